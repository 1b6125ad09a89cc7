-- Declined cards are retried, but an order is charged successfully at most once.

select
    order_id,
    count(*) as succeeded_payments

from {{ ref('stg_payments__payments') }}
where payment_status = 'succeeded'
group by order_id
having count(*) > 1
