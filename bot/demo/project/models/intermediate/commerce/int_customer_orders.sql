with customers as (

    select * from {{ ref('stg_shop__customers') }}

),

orders as (

    select * from {{ ref('int_orders_enriched') }}

),

customer_orders as (

    select
        customer_id,
        count(*) as order_count,
        count(*) filter (where is_paid) as paid_order_count,
        min(ordered_at) as first_ordered_at,
        max(ordered_at) as last_ordered_at,
        coalesce(sum(amount_paid - refunded_amount), 0) as lifetime_net_revenue

    from orders
    group by customer_id

),

joined as (

    select
        customers.customer_id,
        customers.signup_date,
        coalesce(customer_orders.order_count, 0) as order_count,
        coalesce(customer_orders.paid_order_count, 0) as paid_order_count,
        customer_orders.first_ordered_at,
        customer_orders.last_ordered_at,
        date_diff('day', customers.signup_date, cast(customer_orders.first_ordered_at as date))
            as days_to_first_order,
        coalesce(customer_orders.lifetime_net_revenue, 0) as lifetime_net_revenue

    from customers
    left join customer_orders
        on customers.customer_id = customer_orders.customer_id

)

select * from joined
