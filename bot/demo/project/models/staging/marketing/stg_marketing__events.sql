with source as (

    select * from {{ source('marketing', 'events') }}

),

renamed as (

    select
        event_id,
        event_name,
        occurred_at,
        cast(occurred_at as date) as event_date,
        session_id,
        anonymous_id,
        customer_id,
        order_id,
        product_id,
        lower(utm_source) as utm_source,
        lower(utm_medium) as utm_medium,
        lower(utm_campaign) as utm_campaign,
        device_type,
        _loaded_at,
        _partition_date

    from source

)

select * from renamed
