-- *.ft files are ft recipes. Neovim's own table maps the `.ft` extension
-- to Forth (filetype.lua: `ft = 'forth'`); vim.filetype.add takes
-- precedence over that table, so installing this plugin claims `.ft`.
vim.filetype.add({ extension = { ft = 'ft' } })
