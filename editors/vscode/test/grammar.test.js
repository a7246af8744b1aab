// Tokenizes .ft files with the extension's TextMate grammar, using the same
// engine as VS Code (vscode-textmate + the oniguruma WASM build), and checks
// the scopes of chosen tokens. Run: node --test test/
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const root = path.join(__dirname, "..");
const fixtures = path.join(__dirname, "fixtures");
const recipes = path.join(root, "..", "..", "recipes");

let grammarPromise;
function grammar() {
  grammarPromise ??= (async () => {
    const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm"));
    await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
    const registry = new vsctm.Registry({
      onigLib: Promise.resolve({
        createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
        createOnigString: (s) => new oniguruma.OnigString(s),
      }),
      loadGrammar: async (scopeName) => {
        if (scopeName !== "source.ft") return null;
        const file = path.join(root, "syntaxes", "ft.tmLanguage.json");
        return vsctm.parseRawGrammar(fs.readFileSync(file, "utf8"), file);
      },
    });
    return registry.loadGrammar("source.ft");
  })();
  return grammarPromise;
}

/** Every token of a text: { line, text, scopes }. */
async function tokenize(text) {
  const g = await grammar();
  const out = [];
  let state = vsctm.INITIAL;
  text.split(/\r?\n/).forEach((line, i) => {
    const r = g.tokenizeLine(line, state);
    for (const t of r.tokens) {
      out.push({ line: i + 1, text: line.slice(t.startIndex, t.endIndex), scopes: t.scopes });
    }
    state = r.ruleStack;
  });
  return out;
}

const read = (name) => fs.readFileSync(path.join(fixtures, name), "utf8");

/**
 * Asserts that the n-th token (1-based) whose text is exactly `text` has a
 * scope starting with `scope`, optionally only looking at line `line`.
 */
function expectScope(tokens, text, scope, { nth = 1, line } = {}) {
  const hits = tokens.filter((t) => t.text === text && (line === undefined || t.line === line));
  const t = hits[nth - 1];
  assert.ok(t, `no token #${nth} ${JSON.stringify(text)}${line ? ` on line ${line}` : ""}`);
  assert.ok(
    t.scopes.some((s) => s.startsWith(scope)),
    `${JSON.stringify(text)} (line ${t.line}) has ${t.scopes.join(" ")}, expected ${scope}`,
  );
}

/** A non-blank token must carry a scope besides the root and meta.* containers. */
function unscoped(tokens) {
  return tokens.filter(
    (t) => t.text.trim() !== "" && !t.scopes.some((s) => s !== "source.ft" && !s.startsWith("meta.")),
  );
}

/** Tokens the grammar marked invalid (stray characters, bad escapes). */
const invalid = (tokens) => tokens.filter((t) => t.scopes.some((s) => s.startsWith("invalid.")));

const lineOf = (tokens, text) => tokens.find((t) => t.text === text)?.line;

test("classify.ft: blocks, keys, numbers, templates, escapes, comments", async () => {
  const tk = await tokenize(read("classify.ft"));
  expectScope(tk, "#", "punctuation.definition.comment.ft");
  expectScope(tk, " LoRA on a BERT-family encoder: sentiment classification.", "comment.line.number-sign.ft");
  expectScope(tk, "import", "keyword.control.import.ft");
  expectScope(tk, "common", "entity.name.namespace.ft");
  expectScope(tk, "let", "storage.type.let.ft");
  expectScope(tk, "labels", "variable.other.constant.ft");
  expectScope(tk, "model", "keyword.other.block.ft");
  expectScope(tk, "encoder", "entity.name.type.block.ft");
  expectScope(tk, "hf", "entity.name.function.ft");
  expectScope(tk, "dataset", "keyword.other.block.ft");
  expectScope(tk, "peft", "keyword.other.block.ft");
  expectScope(tk, "lora", "entity.name.type.block.ft");
  expectScope(tk, "train", "keyword.other.block.ft", { line: lineOf(tk, "epochs") - 1 });
  expectScope(tk, "evaluate", "keyword.other.block.ft");
  // Keys left of `=` in bodies and records; named arguments in calls.
  expectScope(tk, "head", "variable.other.property.key.ft");
  expectScope(tk, "rank", "variable.other.property.key.ft");
  expectScope(tk, "train", "variable.other.property.key.ft", { nth: 1, line: lineOf(tk, "stratify") });
  expectScope(tk, "lr", "variable.parameter.ft");
  expectScope(tk, "columns", "variable.parameter.ft");
  // Numbers, with `%` and `_`.
  // `80%` is one number; the `%` is a sub-token inside it.
  expectScope(tk, "80", "constant.numeric.ft");
  expectScope(tk, "%", "constant.numeric.ft");
  expectScope(tk, "%", "keyword.other.unit.percent.ft");
  expectScope(tk, "2e-4", "constant.numeric.ft");
  expectScope(tk, "0.05", "constant.numeric.ft");
  expectScope(tk, "10_000", "constant.numeric.ft");
  // Strings: placeholders and escapes.
  expectScope(tk, "text", "variable.other.template.ft", { line: lineOf(tk, "input") });
  expectScope(tk, "{", "punctuation.definition.template-expression.begin.ft", { line: lineOf(tk, "input") });
  expectScope(tk, "\\t", "constant.character.escape.ft");
  expectScope(tk, "Review: ", "string.quoted.double.ft");
  // Braces that cannot be a placeholder (a Jinja tag) are plain text.
  const jinja = tk.find((t) => t.text.includes("% for m in messages %"));
  assert.ok(jinja && !jinja.scopes.some((s) => s.includes("template")), JSON.stringify(jinja));
  expectScope(tk, "{{", "constant.character.escape.brace.ft");
  // Expressions.
  expectScope(tk, "if", "keyword.control.conditional.ft");
  expectScope(tk, "else", "keyword.control.conditional.ft");
  expectScope(tk, ">", "keyword.operator.comparison.ft");
  expectScope(tk, "==", "keyword.operator.comparison.ft");
  expectScope(tk, "and", "keyword.operator.logical.ft");
  expectScope(tk, "not", "keyword.operator.logical.ft");
  expectScope(tk, "true", "constant.language.boolean.ft");
  expectScope(tk, "val", "variable.other.ft", { line: lineOf(tk, "patience") });
  expectScope(tk, ".", "punctuation.accessor.ft", { line: lineOf(tk, "patience") });
  expectScope(tk, "accuracy", "variable.other.property.ft", { line: lineOf(tk, "patience") });
  expectScope(tk, " checked against the model's real modules", "comment.line.number-sign.ft");
  expectScope(tk, ",", "punctuation.separator.comma.ft");
  expectScope(tk, "[", "punctuation.section.brackets.begin.ft");
  expectScope(tk, "{", "punctuation.section.braces.begin.ft");
  assert.deepEqual(unscoped(tk), []);
  assert.deepEqual(invalid(tk), []);
});

test("decoder.ft: long strings, chat roles, stages, sweep axes", async () => {
  const tk = await tokenize(read("decoder.ft"));
  // A long string spans lines; its placeholders and `{{` still count.
  expectScope(tk, '"""', "string.quoted.triple.ft");
  expectScope(tk, "Summarize the approach:", "string.quoted.triple.ft");
  expectScope(tk, "abstract", "variable.other.template.ft");
  expectScope(tk, "{{", "constant.character.escape.brace.ft");
  expectScope(tk, "braces", "string.quoted.triple.ft");
  expectScope(tk, "Summary:", "string.quoted.triple.ft");
  expectScope(tk, "\\n", "constant.character.escape.ft");
  expectScope(tk, "user", "entity.name.tag.role.ft");
  expectScope(tk, "system", "entity.name.tag.role.ft");
  expectScope(tk, "from", "keyword.operator.word.ft");
  expectScope(tk, "where", "keyword.operator.word.ft");
  expectScope(tk, "ascending", "keyword.other.order.ft");
  expectScope(tk, "stage", "keyword.other.sub-block.ft");
  expectScope(tk, "short", "entity.name.type.stage.ft");
  expectScope(tk, "curriculum", "keyword.other.block.ft");
  expectScope(tk, "mixture", "keyword.other.block.ft");
  expectScope(tk, "tasks", "entity.name.type.block.ft");
  expectScope(tk, "sweep", "keyword.other.block.ft");
  expectScope(tk, "output", "keyword.other.block.ft");
  expectScope(tk, "1.5e3", "constant.numeric.ft");
  // Axis paths: every segment, and `in`.
  const axis = lineOf(tk, "in");
  expectScope(tk, "train", "variable.other.axis.ft", { line: axis });
  expectScope(tk, "optimizer", "variable.other.axis.ft", { line: axis });
  expectScope(tk, "lr", "variable.other.axis.ft", { line: axis });
  expectScope(tk, "in", "keyword.operator.in.ft", { line: axis });
  expectScope(tk, "virtual_tokens", "variable.other.axis.ft", { nth: 2 });
  // A split name used as a value and as a record key is not a block keyword.
  expectScope(tk, "train", "variable.other.ft", { line: lineOf(tk, "shots") });
  expectScope(tk, "train", "variable.other.property.key.ft", { line: lineOf(tk, "split") });
  assert.deepEqual(unscoped(tk), []);
  assert.deepEqual(invalid(tk), []);
});

test("prefs.ft: operators, regex strings, keys named like blocks", async () => {
  const tk = await tokenize(read("prefs.ft"));
  expectScope(tk, "*", "keyword.operator.arithmetic.ft");
  expectScope(tk, "/", "keyword.operator.arithmetic.ft");
  expectScope(tk, "-", "keyword.operator.arithmetic.ft");
  expectScope(tk, "+", "keyword.operator.arithmetic.ft");
  expectScope(tk, ">=", "keyword.operator.comparison.ft");
  expectScope(tk, "<=", "keyword.operator.comparison.ft");
  expectScope(tk, "!=", "keyword.operator.comparison.ft");
  expectScope(tk, "<", "keyword.operator.comparison.ft");
  expectScope(tk, "or", "keyword.operator.logical.ft");
  expectScope(tk, "then", "keyword.control.conditional.ft");
  expectScope(tk, "\\\"", "constant.character.escape.ft");
  expectScope(tk, "\\\\", "constant.character.escape.ft");
  expectScope(tk, "name.first", "variable.other.template.ft");
  expectScope(tk, " a template in a let", "comment.line.number-sign.ft");
  expectScope(tk, "(", "punctuation.section.parens.begin.ft");
  // Inside `train { }`, `model = policy` and `data = …` are keys.
  expectScope(tk, "model", "variable.other.property.key.ft", { line: lineOf(tk, "objective") - 2 });
  expectScope(tk, "data", "variable.other.property.key.ft");
  expectScope(tk, "peft", "variable.other.axis.ft", { line: lineOf(tk, "loguniform") - 1 });
  expectScope(tk, "ia3", "entity.name.type.block.ft");
  expectScope(tk, "loguniform", "entity.name.function.ft");
  assert.deepEqual(unscoped(tk), []);
  assert.deepEqual(invalid(tk), []);
});

test("stray characters and bad escapes are marked invalid", async () => {
  const tk = await tokenize('train { batch = 8 ; x = "a\\qb" }');
  expectScope(tk, ";", "invalid.illegal.character.ft");
  expectScope(tk, "\\q", "invalid.illegal.escape.ft");
  // An unterminated string ends at the end of its line.
  const tk2 = await tokenize('let a = "open\nlet b = 1');
  expectScope(tk2, "let", "storage.type.let.ft", { line: 2 });
});

// The project's real recipes, when there are any: every token scoped.
const realRecipes = fs.existsSync(recipes)
  ? fs.readdirSync(recipes).filter((f) => f.endsWith(".ft"))
  : [];
for (const name of realRecipes) {
  test(`recipes/${name}: no token without a scope`, async () => {
    const tk = await tokenize(fs.readFileSync(path.join(recipes, name), "utf8"));
    assert.deepEqual(unscoped(tk), []);
    assert.deepEqual(invalid(tk), []);
  });
}
