with orders as (

    select * from {{ ref('int_orders_enriched') }}

),

customers as (

    select
        customer_id,
        signup_date

    from {{ ref('stg_shop__customers') }}

),

final as (

    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        orders.order_date,
        orders.order_status,
        orders.sales_channel,
        orders.shipping_country,
        orders.discount_code,
        orders.line_count,
        orders.unit_count,
        orders.subtotal_amount,
        orders.discount_amount,
        orders.shipping_amount,
        orders.tax_amount,
        orders.order_total,
        orders.payment_id,
        orders.payment_method,
        orders.paid_at,
        orders.amount_paid,
        orders.refunded_amount,
        orders.amount_paid - orders.refunded_amount as net_revenue,
        orders.is_paid,
        orders.order_date = customers.signup_date as is_new_customer_order

    from orders
    left join customers
        on orders.customer_id = customers.customer_id

)

select * from final
