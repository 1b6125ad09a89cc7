-- A charge can be refunded in parts, but never by more than was charged.

with refunds as (

    select
        payment_id,
        sum(refund_amount) as refunded

    from {{ ref('stg_payments__refunds') }}
    where refund_status = 'succeeded'
    group by payment_id

)

select
    payments.payment_id,
    payments.amount,
    refunds.refunded

from refunds
inner join {{ ref('stg_payments__payments') }} as payments
    on refunds.payment_id = payments.payment_id
where refunds.refunded > payments.amount
    or payments.payment_status <> 'succeeded'
