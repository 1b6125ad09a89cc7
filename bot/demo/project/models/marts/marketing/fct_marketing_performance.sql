-- Spend against attributed results per day, channel and campaign. Email and direct have
-- no spend but are kept so that channel shares add up to all tracked revenue.

with spend as (

    select
        spend_date as performance_date,
        channel,
        campaign_name,
        any_value(campaign_id) as campaign_id,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        sum(spend) as spend

    from {{ ref('stg_marketing__ad_spend') }}
    group by 1, 2, 3

),

sessions as (

    select
        event_date as performance_date,
        coalesce(utm_source, 'direct') as channel,
        coalesce(utm_campaign, '(none)') as campaign_name,
        count(distinct session_id) as sessions

    from {{ ref('stg_marketing__events') }}
    group by 1, 2, 3

),

attributed as (

    select
        order_date as performance_date,
        channel,
        campaign_name,
        count(*) as attributed_orders,
        sum(attributed_revenue) as attributed_revenue

    from {{ ref('int_campaign_attribution') }}
    group by 1, 2, 3

),

keys as (

    select performance_date, channel, campaign_name from spend
    union
    select performance_date, channel, campaign_name from sessions
    union
    select performance_date, channel, campaign_name from attributed

),

final as (

    select
        concat_ws('|', keys.performance_date, keys.channel, keys.campaign_name) as performance_id,
        keys.performance_date,
        keys.channel,
        keys.campaign_name,
        spend.campaign_id,
        coalesce(spend.impressions, 0) as impressions,
        coalesce(spend.clicks, 0) as clicks,
        coalesce(spend.spend, 0) as spend,
        coalesce(sessions.sessions, 0) as sessions,
        coalesce(attributed.attributed_orders, 0) as attributed_orders,
        coalesce(attributed.attributed_revenue, 0) as attributed_revenue,
        round(attributed.attributed_revenue / nullif(spend.spend, 0), 2) as roas,
        round(spend.spend / nullif(attributed.attributed_orders, 0), 2) as cost_per_order

    from keys
    left join spend
        on keys.performance_date = spend.performance_date
        and keys.channel = spend.channel
        and keys.campaign_name = spend.campaign_name
    left join sessions
        on keys.performance_date = sessions.performance_date
        and keys.channel = sessions.channel
        and keys.campaign_name = sessions.campaign_name
    left join attributed
        on keys.performance_date = attributed.performance_date
        and keys.channel = attributed.channel
        and keys.campaign_name = attributed.campaign_name

)

select * from final
