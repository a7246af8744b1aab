-- Buffer settings for ft recipes: `#` comments (gc, :h commenting), and
-- two-space indentation as in the examples.
vim.bo.commentstring = '# %s'
vim.bo.comments = ':#'
vim.bo.shiftwidth = 2
vim.bo.expandtab = true
vim.b.undo_ftplugin = 'setlocal commentstring< comments< shiftwidth< expandtab<'
