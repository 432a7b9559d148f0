; Case labels: an assignment under `case SOCK_STREAM:` of `switch (sock->type)` records that context
; (AF_UNIX and AF_PACKET choose sock->ops this way).
(switch_statement
  condition: (_) @switch.cond
  body: (compound_statement (case_statement) @switch.case)) @switch
