with products as (

    select * from {{ ref('stg_shop__products') }}

),

sales as (

    select
        product_id,
        sum(quantity) as units_sold,
        sum(line_total) as gross_sales

    from {{ ref('stg_shop__order_items') }}
    group by product_id

),

final as (

    select
        products.product_id,
        products.sku,
        products.product_name,
        products.category,
        products.list_price,
        products.unit_cost,
        round((products.list_price - products.unit_cost) / nullif(products.list_price, 0), 4)
            as list_margin,
        products.is_active,
        coalesce(sales.units_sold, 0) as units_sold,
        coalesce(sales.gross_sales, 0) as gross_sales

    from products
    left join sales
        on products.product_id = sales.product_id

)

select * from final
