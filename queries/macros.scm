; Macro definitions -> facts.Macro: function-like macros (whose bodies may call their parameters,
; e.g. an old-kernel NF_HOOK(..., okfn)) and object-like aliases (#define sk_prot __sk_common.skc_prot).
(preproc_function_def
  name: (identifier) @macro.name
  parameters: (preproc_params) @macro.params
  value: (preproc_arg)? @macro.body) @macro

(preproc_def
  name: (identifier) @macro.name
  value: (preproc_arg) @macro.body) @macro
