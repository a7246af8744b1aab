-- ft recipes in Neovim: the `ft lsp` language server and, when a compiled
-- parser is installed, tree-sitter highlighting.
--
--   require('ft').setup({ cmd = { '/path/to/ft', 'lsp' } })
--
-- Neovim >= 0.11 uses vim.lsp.config/vim.lsp.enable; 0.10 falls back to
-- vim.lsp.start from a FileType autocommand.
local M = {}

M.defaults = {
  -- The server: `ft lsp` over stdio. A bare name is looked up on PATH.
  cmd = { 'ft', 'lsp' },
  -- The project root: the nearest folder holding one of these, else the
  -- recipe's own folder (recipes and their imports sit side by side).
  root_markers = { '.git', 'Cargo.toml' },
  -- Start tree-sitter highlighting if a parser named `ft` is installed.
  treesitter = true,
}

M.options = vim.deepcopy(M.defaults)

--- The client configuration, in vim.lsp.config's shape.
function M.lsp_config()
  return {
    cmd = M.options.cmd,
    filetypes = { 'ft' },
    root_markers = M.options.root_markers,
  }
end

local function root_dir(buf)
  local file = vim.api.nvim_buf_get_name(buf)
  return vim.fs.root(buf, M.options.root_markers) or vim.fs.dirname(file)
end

local function start_treesitter(buf)
  if not M.options.treesitter then
    return
  end
  -- language.add fails quietly (returns false/nil) when no parser/ft.so is
  -- on the runtimepath; then the buffer keeps regex or no highlighting.
  local ok, added = pcall(vim.treesitter.language.add, 'ft')
  if ok and added ~= false then
    pcall(vim.treesitter.start, buf, 'ft')
  end
end

--- Sets up the language server and highlighting for `ft` buffers.
--- @param opts? { cmd?: string[], root_markers?: string[], treesitter?: boolean }
function M.setup(opts)
  M.options = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts or {})
  -- ftdetect/ is only sourced for plugins on the runtimepath at startup;
  -- repeating the mapping here covers lazy loading.
  vim.filetype.add({ extension = { ft = 'ft' } })

  local group = vim.api.nvim_create_augroup('ft', { clear = true })
  local use_config = vim.lsp.config ~= nil and vim.lsp.enable ~= nil

  if use_config then
    vim.lsp.config('ft', M.lsp_config())
    vim.lsp.enable('ft')
  end

  vim.api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = 'ft',
    callback = function(ev)
      start_treesitter(ev.buf)
      if not use_config then
        vim.lsp.start({
          name = 'ft',
          cmd = M.options.cmd,
          root_dir = root_dir(ev.buf),
        }, { bufnr = ev.buf })
      end
    end,
  })
end

return M
