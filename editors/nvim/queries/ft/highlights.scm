; Highlights for ft recipes. Capture names follow Neovim's (they fall back
; to their first part, e.g. @keyword, in Helix and the tree-sitter CLI).
; Patterns are disjoint, so the result does not depend on whether an editor
; lets the first or the last matching pattern win.

(comment) @comment @spell

; Items
["import" "as"] @keyword.import
"let" @keyword
(import alias: (identifier) @module)
(let name: (identifier) @constant)

; Blocks: `model encoder = …`, `peft lora`, `stage short`
(block keyword: (identifier) @keyword)
(block name: (identifier) @type)
(sub_block keyword: (identifier) @keyword)
(sub_block name: (identifier) @type)

; Keys, arguments, chat roles, sweep axes
(assignment key: (identifier) @property)
(field key: (identifier) @property)
(named_argument name: (identifier) @variable.parameter)
(pair role: (identifier) @label)
(axis_path (identifier) @variable.member)

(call function: (identifier) @function.call)

; References: `tasks`, `val.accuracy`
(path . (identifier) @variable)
(path "." . (identifier) @variable.member)

; Literals
(number) @number
(boolean) @boolean
(string) @string
(escape_sequence) @string.escape
(brace_escape) @string.escape
(placeholder ["{" "}"] @punctuation.special)
(field_name) @variable

; Keywords and operators
["if" "then" "else"] @keyword.conditional
["and" "or" "not" "where" "from" "in"] @keyword.operator
["ascending" "descending"] @keyword.modifier
["==" "!=" "<=" ">=" "<" ">" "+" "-" "*" "/" "="] @operator

; Punctuation
(body ["{" "}"] @punctuation.bracket)
(record ["{" "}"] @punctuation.bracket)
(list ["[" "]"] @punctuation.bracket)
(call ["(" ")"] @punctuation.bracket)
(parenthesized ["(" ")"] @punctuation.bracket)
["," "." ":"] @punctuation.delimiter
