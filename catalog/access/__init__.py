"""Who may do what: the caller (actor and context), the authorization rules every action asks,
API tokens, passwords and the throttle on bad tokens."""
