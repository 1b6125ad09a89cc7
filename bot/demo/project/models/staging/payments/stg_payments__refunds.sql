with source as (

    select * from {{ source('payments', 'refunds') }}

),

renamed as (

    select
        refund_id,
        payment_id,
        order_id,
        created_at as refunded_at,
        cast(created_at as date) as refund_date,
        amount as refund_amount,
        upper(currency) as currency,
        reason as refund_reason,
        status as refund_status,
        _loaded_at,
        _partition_date

    from source

)

select * from renamed
