with payments as (

    select * from {{ ref('stg_payments__payments') }}

),

refunds as (

    select
        payment_id,
        count(*) as refund_count,
        sum(refund_amount) as refunded_amount

    from {{ ref('stg_payments__refunds') }}
    where refund_status = 'succeeded'
    group by payment_id

),

final as (

    select
        payments.payment_id,
        payments.order_id,
        payments.created_at,
        payments.payment_date,
        payments.payment_status,
        payments.payment_method,
        payments.card_brand,
        payments.failure_code,
        payments.currency,
        payments.amount,
        coalesce(refunds.refund_count, 0) as refund_count,
        coalesce(refunds.refunded_amount, 0) as refunded_amount,
        case
            when payments.payment_status = 'succeeded'
                then payments.amount - coalesce(refunds.refunded_amount, 0)
            else 0
        end as net_amount

    from payments
    left join refunds
        on payments.payment_id = refunds.payment_id

)

select * from final
