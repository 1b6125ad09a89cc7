-- A table, not a view: every commerce model reads customers, and the export's text dates
-- should fail to parse here, once, rather than inside each consumer.
{{ config(materialized='table') }}

with source as (

    select * from {{ source('shop', 'customers') }}

),

-- the export holds every version of a customer that changed that day: keep the latest
latest as (

    select *
    from source
    qualify row_number() over (
        partition by customer_id
        order by updated_at desc, _loaded_at desc
    ) = 1

),

renamed as (

    select
        customer_id,
        lower(email) as email,
        first_name,
        last_name,
        upper(country_code) as country_code,
        cast(signup_date as date) as signup_date,
        accepts_marketing,
        updated_at,
        _loaded_at

    from latest

)

select * from renamed
