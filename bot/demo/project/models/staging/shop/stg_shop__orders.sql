with source as (

    select * from {{ source('shop', 'orders') }}

),

renamed as (

    select
        order_id,
        customer_id,
        created_at as ordered_at,
        cast(created_at as date) as order_date,
        lower(status) as order_status,
        sales_channel,
        upper(currency) as currency,
        subtotal_amount,
        discount_amount,
        shipping_amount,
        tax_amount,
        total_amount as order_total,
        discount_code,
        shipping_country,
        updated_at,
        _loaded_at,
        _partition_date

    from source

)

select * from renamed
