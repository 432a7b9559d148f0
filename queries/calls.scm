; Call sites -> facts.Call. Pattern 0: a named callee (a function, a macro, a local or parameter
; holding a function pointer, or an INDIRECT_CALL_* wrapper). Pattern 1: a callee computed by an
; expression.
; Must match:  __sys_sendto(fd, buff, len, flags, addr, addr_len)
;              sock->ops->sendmsg(sock, msg, size)      skb_dst(skb)->output(net, sk, skb)
;              (*fn)(arg)                               table[i](arg)
(call_expression
  function: (identifier) @call.name
  arguments: (argument_list) @call.args) @call

(call_expression
  function: [(field_expression) (parenthesized_expression) (subscript_expression)
             (pointer_expression) (call_expression) (cast_expression)] @call.expr
  arguments: (argument_list) @call.args) @call
