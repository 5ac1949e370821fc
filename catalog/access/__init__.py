"""Who may do what: the one access policy every action asks (:mod:`catalog.access.policy`), the
caller (actor and context), API tokens, passwords and the throttle on bad tokens."""
