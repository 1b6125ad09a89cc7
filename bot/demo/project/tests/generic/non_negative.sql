{% test non_negative(model, column_name) %}
    -- amounts and counts that can only be zero or more
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} < 0
{% endtest %}
