# Neovim capture names (tree-sitter-ft/queries/highlights.scm) to Helix
# scopes. `editors/test.sh` checks queries/ft/highlights.scm equals
#   sed -E -f captures.sed ../tree-sitter-ft/queries/highlights.scm
# Longer names first; each rule needs the name to end there.
s/@spell([^.a-z_]|$)/\1/g
s/ +$//
s/@keyword\.import([^.a-z_]|$)/@keyword.control.import\1/g
s/@keyword\.conditional([^.a-z_]|$)/@keyword.control.conditional\1/g
s/@keyword\.modifier([^.a-z_]|$)/@keyword.storage.modifier\1/g
s/@module([^.a-z_]|$)/@namespace\1/g
s/@property([^.a-z_]|$)/@variable.other.member\1/g
s/@variable\.member([^.a-z_]|$)/@variable.other.member\1/g
s/@function\.call([^.a-z_]|$)/@function\1/g
s/@number([^.a-z_]|$)/@constant.numeric\1/g
s/@boolean([^.a-z_]|$)/@constant.builtin.boolean\1/g
s/@string\.escape([^.a-z_]|$)/@constant.character.escape\1/g
s/^; Highlights for ft recipes\. Capture names follow Neovim's \(they fall back$/; Highlights for ft recipes, with Helix's scope names. Generated from/
s/^; to their first part, e\.g\. @keyword, in Helix and the tree-sitter CLI\)\.$/; editors\/tree-sitter-ft\/queries\/highlights.scm by editors\/helix\/captures.sed./
