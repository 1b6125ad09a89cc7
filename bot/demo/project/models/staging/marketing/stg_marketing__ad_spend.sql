with source as (

    select * from {{ source('marketing', 'ad_spend') }}

),

renamed as (

    select
        concat_ws('|', "date", channel, campaign_id) as ad_spend_id,
        "date" as spend_date,
        campaign_id,
        lower(campaign_name) as campaign_name,
        lower(channel) as channel,
        impressions,
        clicks,
        spend,
        upper(currency) as currency,
        _loaded_at,
        _partition_date

    from source

)

select * from renamed
