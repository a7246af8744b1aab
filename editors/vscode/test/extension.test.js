// Checks the client's wiring without VS Code: `vscode` and the language
// client are replaced by stubs, then activate() must start `<ft.path> lsp`
// over stdio for the `ft` language, and restart on a new `ft.path`.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const Module = require("node:module");
const path = require("node:path");

function load(settings) {
  const clients = [];
  const listeners = [];
  const vscode = {
    workspace: {
      getConfiguration: (section) => ({ get: (key) => settings[`${section}.${key}`] }),
      createFileSystemWatcher: (glob) => ({ glob, dispose() {} }),
      onDidChangeConfiguration: (fn) => (listeners.push(fn), { dispose() {} }),
    },
    window: { showErrorMessage: async () => undefined },
    commands: { registerCommand: () => ({ dispose() {} }), executeCommand() {} },
  };
  class LanguageClient {
    constructor(id, name, server, client) {
      Object.assign(this, { id, name, server, client, started: false, stopped: false });
      clients.push(this);
    }
    async start() { this.started = true; }
    async stop() { this.stopped = true; }
  }
  const stubs = {
    vscode,
    "vscode-languageclient/node": { LanguageClient, TransportKind: { stdio: 0 } },
  };
  const realLoad = Module._load;
  Module._load = function (request, ...rest) {
    return request in stubs ? stubs[request] : realLoad.call(this, request, ...rest);
  };
  try {
    const file = path.join(__dirname, "..", "extension.js");
    delete require.cache[require.resolve(file)];
    return { ext: require(file), clients, listeners };
  } finally {
    Module._load = realLoad;
  }
}

test("activate starts `ft lsp` for the ft language", async () => {
  const { ext, clients } = load({});
  await ext.activate({ subscriptions: [] });
  assert.equal(clients.length, 1);
  const c = clients[0];
  assert.equal(c.server.run.command, "ft");
  assert.deepEqual(c.server.run.args, ["lsp"]);
  assert.equal(c.server.run.transport, 0);
  assert.deepEqual(c.client.documentSelector, [{ language: "ft" }]);
  assert.ok(c.started);
  await ext.deactivate();
  assert.ok(c.stopped);
});

test("ft.path is used, and a change restarts the server", async () => {
  const settings = { "ft.path": "/opt/ft/bin/ft" };
  const { ext, clients, listeners } = load(settings);
  await ext.activate({ subscriptions: [] });
  assert.equal(clients[0].server.run.command, "/opt/ft/bin/ft");
  settings["ft.path"] = "/usr/local/bin/ft";
  await listeners[0]({ affectsConfiguration: (s) => s === "ft.path" });
  assert.ok(clients[0].stopped);
  assert.equal(clients[1].server.run.command, "/usr/local/bin/ft");
  assert.ok(clients[1].started);
});

test("package.json declares the language, grammar and setting", () => {
  const pkg = require("../package.json");
  assert.deepEqual(pkg.activationEvents, ["onLanguage:ft"]);
  const lang = pkg.contributes.languages.find((l) => l.id === "ft");
  assert.deepEqual(lang.extensions, [".ft"]);
  assert.equal(pkg.contributes.grammars[0].scopeName, "source.ft");
  assert.equal(pkg.contributes.configuration.properties["ft.path"].default, "ft");
  // The real client module resolves (a production dependency, shipped in the .vsix).
  assert.ok(require.resolve("vscode-languageclient/node"));
});

test("language-configuration: indentation on { [ ( and comments", () => {
  const conf = require("../language-configuration.json");
  const inc = new RegExp(conf.indentationRules.increaseIndentPattern);
  const dec = new RegExp(conf.indentationRules.decreaseIndentPattern);
  assert.ok(inc.test('model x = hf("models/m") {'));
  assert.ok(inc.test("train {  # trailing comment"));
  assert.ok(inc.test("  prompt = chat(["));
  assert.ok(!inc.test("  split = { train = 80% }"));
  assert.ok(!inc.test("# a comment ending in {"));
  assert.ok(dec.test("}") && dec.test("  ])"));
  assert.equal(conf.comments.lineComment, "#");
});
