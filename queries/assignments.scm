; Assignments of values that may be functions or tables -> facts.Assign.
; Must match:  rt->dst.output = ip_output;          sock->ops = answer->ops;
;              net_hotdata.udp_protocol = (struct net_protocol) { .handler = udp_rcv, };
;              getfrag = is_udplite ? udplite_getfrag : ip_generic_getfrag;
(assignment_expression
  left: [(field_expression) (identifier) (subscript_expression) (pointer_expression)
         (parenthesized_expression)] @assign.lhs
  operator: "="
  right: [(identifier) (pointer_expression) (field_expression) (conditional_expression)
          (cast_expression) (parenthesized_expression) (call_expression)
          (assignment_expression) (subscript_expression) (compound_literal_expression)] @assign.rhs) @assign
