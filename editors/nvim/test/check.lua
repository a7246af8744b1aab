-- Headless checks of the Neovim plugin, without a language server:
-- filetype detection, ftplugin settings, the LSP configuration, and
-- tree-sitter highlighting with the compiled parser.
--
--   nvim --headless --clean -l editors/nvim/test/check.lua PLUGIN_DIR PARSER_DIR FILE...
--
-- PARSER_DIR holds parser/ft.so. Prints "ok …"/"FAIL …" lines; exits 1 on
-- any failure.
local plugin, parser_dir = arg[1], arg[2]
local files = { unpack(arg, 3) }
local failed = 0

local function check(name, ok, detail)
  if ok then
    print('ok   nvim: ' .. name)
  else
    failed = failed + 1
    print('FAIL nvim: ' .. name .. (detail and (' (' .. tostring(detail) .. ')') or ''))
  end
end

vim.opt.runtimepath:prepend(plugin)
vim.opt.runtimepath:append(parser_dir)
vim.cmd('filetype plugin on')
-- What Neovim does at startup for plugins on the runtimepath.
vim.cmd.runtime('ftdetect/ft.lua')
check('ftdetect: *.ft is filetype ft', vim.filetype.match({ filename = 'x/recipe.ft' }) == 'ft')
-- A stand-in server that stays up and says nothing: the server itself is
-- not under test here, only that a client named `ft` is started for a
-- recipe with the configured command.
local fake = { 'sleep', '30' }
require('ft').setup({ cmd = fake })

check('after setup: *.ft is filetype ft', vim.filetype.match({ filename = 'x/recipe.ft' }) == 'ft')
if vim.lsp.config then
  local c = vim.lsp.config.ft
  check('vim.lsp.config.ft', c and vim.deep_equal(c.cmd, fake) and vim.deep_equal(c.filetypes, { 'ft' }), vim.inspect(c))
end
local ok_q, query = pcall(vim.treesitter.query.get, 'ft', 'highlights')
check('highlights.scm compiles against the parser', ok_q and query ~= nil, query)

for _, file in ipairs(files) do
  vim.cmd.edit(vim.fn.fnameescape(file))
  local buf = vim.api.nvim_get_current_buf()
  local name = vim.fn.fnamemodify(file, ':t')
  check(name .. ': filetype', vim.bo[buf].filetype == 'ft', vim.bo[buf].filetype)
  check(name .. ': commentstring', vim.bo[buf].commentstring == '# %s', vim.bo[buf].commentstring)
  check(name .. ': tree-sitter highlighting on', vim.treesitter.highlighter.active[buf] ~= nil)
  local ok_p, p = pcall(vim.treesitter.get_parser, buf, 'ft')
  local tree = ok_p and p and p:parse()[1]
  check(name .. ': parses without errors', tree and not tree:root():has_error(), ok_p and '' or p)
  vim.cmd('bwipeout!')
end

-- The stand-in never answers `initialize`, so the client stays
-- uninitialized; get_clients lists such clients only when asked to.
local any = { name = 'ft', _uninitialized = true }
local function started()
  vim.wait(2000, function() return #vim.lsp.get_clients(any) > 0 end)
  local c = vim.lsp.get_clients(any)[1]
  return c and vim.deep_equal(c.config.cmd, fake), c and vim.inspect(c.config.cmd)
end
local function stop_all()
  for _, c in ipairs(vim.lsp.get_clients(any)) do
    c:stop(true)
  end
  vim.wait(2000, function() return #vim.lsp.get_clients(any) == 0 end)
end
check('LSP client started with the configured command', started())
stop_all()

-- Neovim 0.10 has no vim.lsp.config/enable: setup falls back to vim.lsp.start.
if vim.lsp.enable then
  vim.lsp.enable('ft', false)
  vim.lsp.enable = nil
  require('ft').setup({ cmd = fake })
  vim.cmd.edit(vim.fn.fnameescape(files[1]))
  check('0.10 path: vim.lsp.start with the configured command', started())
  stop_all()
end

os.exit(failed == 0 and 0 or 1)
