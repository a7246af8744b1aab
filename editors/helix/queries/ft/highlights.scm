; Highlights for ft recipes, with Helix's scope names. Generated from
; editors/tree-sitter-ft/queries/highlights.scm by editors/helix/captures.sed.
; Patterns are disjoint, so the result does not depend on whether an editor
; lets the first or the last matching pattern win.

(comment) @comment

; Items
["import" "as"] @keyword.control.import
"let" @keyword
(import alias: (identifier) @namespace)
(let name: (identifier) @constant)

; Blocks: `model encoder = …`, `peft lora`, `stage short`
(block keyword: (identifier) @keyword)
(block name: (identifier) @type)
(sub_block keyword: (identifier) @keyword)
(sub_block name: (identifier) @type)

; Keys, arguments, chat roles, sweep axes
(assignment key: (identifier) @variable.other.member)
(field key: (identifier) @variable.other.member)
(named_argument name: (identifier) @variable.parameter)
(pair role: (identifier) @label)
(axis_path (identifier) @variable.other.member)

(call function: (identifier) @function)

; References: `tasks`, `val.accuracy`
(path . (identifier) @variable)
(path "." . (identifier) @variable.other.member)

; Literals
(number) @constant.numeric
(boolean) @constant.builtin.boolean
(string) @string
(escape_sequence) @constant.character.escape
(brace_escape) @constant.character.escape
(placeholder ["{" "}"] @punctuation.special)
(field_name) @variable

; Keywords and operators
["if" "then" "else"] @keyword.control.conditional
["and" "or" "not" "where" "from" "in"] @keyword.operator
["ascending" "descending"] @keyword.storage.modifier
["==" "!=" "<=" ">=" "<" ">" "+" "-" "*" "/" "="] @operator

; Punctuation
(body ["{" "}"] @punctuation.bracket)
(record ["{" "}"] @punctuation.bracket)
(list ["[" "]"] @punctuation.bracket)
(call ["(" ")"] @punctuation.bracket)
(parenthesized ["(" ")"] @punctuation.bracket)
["," "." ":"] @punctuation.delimiter
