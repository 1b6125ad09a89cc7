with source as (

    select * from {{ source('shop', 'order_items') }}

),

renamed as (

    select
        order_item_id,
        order_id,
        line_number,
        product_id,
        quantity,
        unit_price,
        discount_amount,
        quantity * unit_price - discount_amount as line_total,
        _loaded_at,
        _partition_date

    from source

)

select * from renamed
