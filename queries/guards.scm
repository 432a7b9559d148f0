; Guards: the case label or if-condition an assignment or a call sits under. AF_UNIX chooses
; sock->ops in `switch (sock->type) { case SOCK_STREAM: ... }`, AF_PACKET with
; `if (sock->type == SOCK_PACKET)`, unix_create1 calls sk_alloc under `if (type == SOCK_STREAM)`.
(switch_statement
  condition: (_) @switch.cond
  body: (compound_statement) @switch.body) @switch

(if_statement
  condition: (_) @if.cond
  consequence: (_) @if.then
  alternative: (else_clause)? @if.else) @if

; A label: the code after one that only jumps reach (the statement before it never falls through:
; `return 0; reset: tcp_v4_send_reset(...)`) is an exit path beside the main line.
(labeled_statement) @label
