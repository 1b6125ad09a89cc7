-- Revenue per day as finance reports it: orders count on the day they were placed,
-- refunds on the day they were issued.

with orders as (

    select
        order_date as revenue_date,
        count(*) as orders_placed,
        count(*) filter (where is_paid) as orders_paid,
        count(*) filter (where is_new_customer_order) as new_customer_orders,
        coalesce(sum(amount_paid), 0) as gross_revenue,
        coalesce(sum(discount_amount) filter (where is_paid), 0) as discounts,
        coalesce(sum(tax_amount) filter (where is_paid), 0) as tax_collected

    from {{ ref('fct_orders') }}
    group by order_date

),

refunds as (

    select
        refund_date as revenue_date,
        count(*) as refunds_issued,
        sum(refund_amount) as refunds

    from {{ ref('stg_payments__refunds') }}
    where refund_status = 'succeeded'
    group by refund_date

),

final as (

    select
        orders.revenue_date,
        orders.orders_placed,
        orders.orders_paid,
        orders.new_customer_orders,
        orders.gross_revenue,
        orders.discounts,
        orders.tax_collected,
        coalesce(refunds.refunds_issued, 0) as refunds_issued,
        coalesce(refunds.refunds, 0) as refunds,
        orders.gross_revenue - coalesce(refunds.refunds, 0) as net_revenue,
        round(orders.gross_revenue / nullif(orders.orders_paid, 0), 2) as average_order_value

    from orders
    left join refunds
        on orders.revenue_date = refunds.revenue_date

)

select * from final
