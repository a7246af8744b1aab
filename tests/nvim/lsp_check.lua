-- Drives `ft lsp` through Neovim's own LSP client, headless, using the
-- project's Neovim plugin (editors/nvim). Run by tests/nvim_lsp.rs:
--   nvim --headless --clean -l tests/nvim/lsp_check.lua FT_BINARY RECIPE
-- Prints one `ok`/`FAIL` line per check and exits non-zero on failure.
local ft_bin, recipe = arg[1], arg[2]
local repo = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h:h')
vim.opt.runtimepath:prepend(repo .. '/editors/nvim')
require('ft').setup({ cmd = { ft_bin, 'lsp' }, treesitter = false })

local failures = 0
local function check(name, ok, detail)
  print((ok and 'ok   ' or 'FAIL ') .. name .. ((not ok and detail) and (': ' .. vim.inspect(detail)) or ''))
  if not ok then failures = failures + 1 end
end

vim.cmd.edit(recipe)
local buf = vim.api.nvim_get_current_buf()
check('filetype is ft', vim.bo[buf].filetype == 'ft', vim.bo[buf].filetype)

local attached = vim.wait(15000, function()
  return #vim.lsp.get_clients({ bufnr = buf, name = 'ft' }) > 0
end, 50)
check('ft lsp attached', attached)

-- 1. Diagnostics: the recipe has a misspelt key (FT0102) and a LoRA target
--    the model lacks (FT0607), both published on open.
local function codes()
  local out = {}
  for _, d in ipairs(vim.diagnostic.get(buf)) do out[tostring(d.code)] = d end
  return out
end
vim.wait(15000, function() local c = codes(); return c.FT0102 ~= nil and c.FT0607 ~= nil end, 50)
local c = codes()
check('diagnostic FT0102 (unknown key) published', c.FT0102 ~= nil, vim.diagnostic.get(buf))
check('diagnostic FT0607 (unknown target) published', c.FT0607 ~= nil, vim.diagnostic.get(buf))
if c.FT0102 then
  local line = vim.api.nvim_buf_get_lines(buf, c.FT0102.lnum, c.FT0102.lnum + 1, false)[1]
  check('FT0102 points at the misspelt key', line:sub(c.FT0102.col + 1, c.FT0102.end_col) == 'epocs', line)
end

local function request(method, params)
  local res = vim.lsp.buf_request_sync(buf, method, params, 10000)
  for _, r in pairs(res or {}) do
    if r.result then return r.result end
  end
end

local function pos_of(pattern, offset)
  for i, l in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do
    local s = l:find(pattern, 1, true)
    if s then return { line = i - 1, character = s - 1 + (offset or 0) } end
  end
end

local uri = vim.uri_from_bufnr(buf)

-- 2. Hover on a key shows its documentation from the schema.
local hover = request('textDocument/hover', { textDocument = { uri = uri }, position = pos_of('dropout', 1) })
local hover_text = hover and (type(hover.contents) == 'table' and (hover.contents.value or vim.inspect(hover.contents)) or hover.contents) or ''
check('hover on `dropout` documents it', hover_text:find('ropout') ~= nil, hover)

-- 3. Completion inside `targets = [` offers the model's real modules.
local tpos = pos_of('targets = [', #'targets = [')
local comp = request('textDocument/completion', { textDocument = { uri = uri }, position = tpos })
local items = comp and (comp.items or comp) or {}
local labels = {}
for _, it in ipairs(items) do labels[it.label] = true end
check('completion offers `query` from the real model', labels.query == true, vim.tbl_keys(labels))

-- 4. The quick fix for the misspelt key applies the did-you-mean.
if c.FT0102 then
  local d = c.FT0102
  local actions = request('textDocument/codeAction', {
    textDocument = { uri = uri },
    range = { start = { line = d.lnum, character = d.col }, ['end'] = { line = d.end_lnum, character = d.end_col } },
    context = { diagnostics = { d.user_data and d.user_data.lsp or {} } },
  }) or {}
  local fix
  for _, a in ipairs(actions) do
    if a.edit and (a.title or ''):find('epochs') then fix = a end
  end
  check('a quick fix replaces `epocs` with `epochs`', fix ~= nil, actions)
  if fix then
    vim.lsp.util.apply_workspace_edit(fix.edit, 'utf-16')
    local fixed = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n')
    check('the fix was applied', fixed:find('epochs') ~= nil and fixed:find('epocs') == nil)
    vim.wait(10000, function() return codes().FT0102 == nil end, 50)
    check('FT0102 is gone after the fix', codes().FT0102 == nil, vim.diagnostic.get(buf))
  end
end

-- 5. Formatting returns edits that give the canonical layout.
local edits = request('textDocument/formatting', { textDocument = { uri = uri }, options = { tabSize = 2, insertSpaces = true } })
check('formatting answers', edits ~= nil)
if edits then vim.lsp.util.apply_text_edits(edits, buf, 'utf-16') end
local formatted = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n')
check('formatting keeps the comments', formatted:find('# keep this comment', 1, true) ~= nil, formatted)

vim.lsp.stop_client(vim.lsp.get_clients({ bufnr = buf }), true)
print(string.format('%d failed', failures))
os.exit(failures == 0 and 0 or 1)
