-- Neovim >= 0.11 reads this file for `vim.lsp.enable('ft')`; override any
-- field with `vim.lsp.config('ft', { ... })` or require('ft').setup({ ... }).
return require('ft').lsp_config()
