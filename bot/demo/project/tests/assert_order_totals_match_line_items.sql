-- An order's subtotal and discount are the sums over its lines.

with lines as (

    select
        order_id,
        sum(quantity * unit_price) as subtotal_amount,
        sum(discount_amount) as discount_amount

    from {{ ref('stg_shop__order_items') }}
    group by order_id

)

select
    orders.order_id,
    orders.subtotal_amount,
    lines.subtotal_amount as lines_subtotal,
    orders.discount_amount,
    lines.discount_amount as lines_discount

from {{ ref('stg_shop__orders') }} as orders
left join lines
    on orders.order_id = lines.order_id
where lines.order_id is null
    or orders.subtotal_amount <> lines.subtotal_amount
    or orders.discount_amount <> lines.discount_amount
