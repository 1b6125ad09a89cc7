with customers as (

    select * from {{ ref('stg_shop__customers') }}

),

customer_orders as (

    select * from {{ ref('int_customer_orders') }}

),

final as (

    select
        customers.customer_id,
        customers.email,
        customers.first_name,
        customers.last_name,
        customers.country_code,
        customers.signup_date,
        customers.accepts_marketing,
        customer_orders.first_ordered_at,
        customer_orders.last_ordered_at,
        customer_orders.days_to_first_order,
        customer_orders.order_count,
        customer_orders.paid_order_count,
        customer_orders.lifetime_net_revenue,
        case
            when customer_orders.paid_order_count = 0 then 'prospect'
            when customer_orders.paid_order_count = 1 then 'new'
            when customer_orders.paid_order_count < 5 then 'returning'
            else 'loyal'
        end as customer_segment

    from customers
    left join customer_orders
        on customers.customer_id = customer_orders.customer_id

)

select * from final
