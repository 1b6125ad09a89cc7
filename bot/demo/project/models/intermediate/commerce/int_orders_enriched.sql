with orders as (

    select * from {{ ref('stg_shop__orders') }}

),

order_items as (

    select
        order_id,
        count(*) as line_count,
        sum(quantity) as unit_count,
        sum(line_total) as items_total

    from {{ ref('stg_shop__order_items') }}
    group by order_id

),

-- a declined card is retried, so an order can have several attempts: only the charge
-- that went through counts (at most one per order)
payments as (

    select
        order_id,
        payment_id,
        payment_method,
        created_at as paid_at,
        amount as amount_paid

    from {{ ref('stg_payments__payments') }}
    where payment_status = 'succeeded'

),

refunds as (

    select
        order_id,
        sum(refund_amount) as refunded_amount,
        max(refunded_at) as last_refunded_at

    from {{ ref('stg_payments__refunds') }}
    where refund_status = 'succeeded'
    group by order_id

),

joined as (

    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        orders.order_date,
        orders.order_status,
        orders.sales_channel,
        orders.shipping_country,
        orders.discount_code,
        coalesce(order_items.line_count, 0) as line_count,
        coalesce(order_items.unit_count, 0) as unit_count,
        orders.subtotal_amount,
        orders.discount_amount,
        orders.shipping_amount,
        orders.tax_amount,
        orders.order_total,
        payments.payment_id,
        payments.payment_method,
        payments.paid_at,
        coalesce(payments.amount_paid, 0) as amount_paid,
        coalesce(refunds.refunded_amount, 0) as refunded_amount,
        refunds.last_refunded_at,
        payments.payment_id is not null as is_paid

    from orders
    left join order_items
        on orders.order_id = order_items.order_id
    left join payments
        on orders.order_id = payments.order_id
    left join refunds
        on orders.order_id = refunds.order_id

)

select * from joined
