with source as (

    select * from {{ source('payments', 'payments') }}

),

renamed as (

    select
        payment_id,
        order_id,
        created_at,
        cast(created_at as date) as payment_date,
        status as payment_status,
        amount,
        upper(currency) as currency,
        payment_method,
        card_brand,
        failure_code,
        _loaded_at,
        _partition_date

    from source

)

select * from renamed
