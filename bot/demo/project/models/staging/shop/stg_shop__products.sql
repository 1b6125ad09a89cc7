with source as (

    select * from {{ source('shop', 'products') }}

),

renamed as (

    select
        product_id,
        sku,
        product_name,
        category,
        list_price,
        unit_cost,
        is_active,
        _loaded_at

    from source

)

select * from renamed
