// The VS Code client for ft: starts `ft lsp` over stdio for `.ft` files.
// Plain JavaScript (CommonJS) so the extension needs no build step; VS Code
// loads this file as is. Highlighting comes from the TextMate grammar in
// syntaxes/, not from the server, so it works without the binary.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

/** @type {LanguageClient | undefined} */
let client;

function serverOptions() {
  // `ft.path` may be a bare name (looked up on PATH) or a path; `~` is
  // expanded because settings.json users write it and spawn does not.
  let command = vscode.workspace.getConfiguration("ft").get("path") || "ft";
  if (command.startsWith("~/")) {
    command = require("os").homedir() + command.slice(1);
  }
  const run = { command, args: ["lsp"], transport: TransportKind.stdio };
  return { run, debug: run };
}

async function start(context) {
  client = new LanguageClient(
    "ft",
    "ft",
    serverOptions(),
    {
      documentSelector: [{ language: "ft" }],
      synchronize: {
        // Imported recipes and data headers live in other files; the server
        // re-checks when they change.
        fileEvents: vscode.workspace.createFileSystemWatcher("**/*.ft"),
      },
    },
  );
  try {
    await client.start();
  } catch (err) {
    // A missing binary should not break highlighting: say so once, with
    // the setting to fix it.
    const pick = await vscode.window.showErrorMessage(
      `ft: could not start the language server (${err && err.message ? err.message : err}). Set "ft.path" to the ft binary.`,
      "Open Settings",
    );
    if (pick) {
      vscode.commands.executeCommand("workbench.action.openSettings", "ft.path");
    }
  }
}

async function stop() {
  if (client) {
    const c = client;
    client = undefined;
    try {
      await c.stop();
    } catch {
      // Already stopped, or never started.
    }
  }
}

/** @param {vscode.ExtensionContext} context */
async function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand("ft.restartServer", async () => {
      await stop();
      await start(context);
    }),
    // A new `ft.path` takes effect without reloading the window.
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (e.affectsConfiguration("ft.path")) {
        await stop();
        await start(context);
      }
    }),
  );
  await start(context);
}

function deactivate() {
  return stop();
}

module.exports = { activate, deactivate };
