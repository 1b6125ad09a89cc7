-- fct_daily_revenue must add up to the orders it summarises, to the cent.

with orders as (

    select
        order_date,
        sum(amount_paid) as gross_revenue

    from {{ ref('fct_orders') }}
    group by order_date

)

select
    daily.revenue_date,
    daily.gross_revenue as reported,
    orders.gross_revenue as from_orders

from {{ ref('fct_daily_revenue') }} as daily
full outer join orders
    on daily.revenue_date = orders.order_date
where coalesce(daily.gross_revenue, -1) <> coalesce(orders.gross_revenue, -1)
