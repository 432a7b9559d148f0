; Struct and union definitions with a body -> facts.Struct (fields and their types).
; Must match:  struct proto_ops { int (*sendmsg)(struct socket *, struct msghdr *, size_t); ... };
;              struct rtable { struct dst_entry dst; ... };
(struct_specifier
  name: (type_identifier) @struct.name
  body: (field_declaration_list) @struct.body) @struct

(union_specifier
  name: (type_identifier) @struct.name
  body: (field_declaration_list) @struct.body) @struct
