-- Last-touch attribution: each tracked order is credited to the UTM source and campaign
-- of the session it was purchased in. Untagged sessions count as direct.

with purchases as (

    select
        order_id,
        session_id,
        occurred_at as purchased_at

    from {{ ref('stg_marketing__events') }}
    where event_name = 'purchase'

),

sessions as (

    select
        session_id,
        min(occurred_at) as session_started_at,
        any_value(utm_source) as utm_source,
        any_value(utm_medium) as utm_medium,
        any_value(utm_campaign) as utm_campaign,
        any_value(device_type) as device_type

    from {{ ref('stg_marketing__events') }}
    group by session_id

),

orders as (

    select
        order_id,
        order_date,
        amount_paid,
        refunded_amount

    from {{ ref('int_orders_enriched') }}
    where is_paid

),

attributed as (

    select
        orders.order_id,
        orders.order_date,
        purchases.session_id,
        purchases.purchased_at,
        sessions.session_started_at,
        coalesce(sessions.utm_source, 'direct') as channel,
        coalesce(sessions.utm_medium, 'none') as medium,
        coalesce(sessions.utm_campaign, '(none)') as campaign_name,
        sessions.device_type,
        orders.amount_paid as attributed_revenue

    from purchases
    inner join orders
        on purchases.order_id = orders.order_id
    left join sessions
        on purchases.session_id = sessions.session_id

)

select * from attributed
