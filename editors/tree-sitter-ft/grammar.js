/**
 * @file Tree-sitter grammar for ft recipes (.ft), for editors (Neovim,
 * Helix, …). It follows grammar/ft.pest, the compiler's grammar, but is more
 * lenient where a highlighter should be: any identifier may start a block
 * (the checker, not the grammar, decides which keywords exist) and strings
 * are never rejected for their braces.
 */

/// <reference types="tree-sitter-cli/dsl" />
// @ts-check

// Operator precedence, lowest first, as the Pratt parser in
// compiler/src/syntax/parse.rs: where, from, or, and, comparisons, + -, * /,
// prefix (- not), postfix (ascending descending).
const PREC = {
  if: 0,
  where: 1,
  from: 2,
  or: 3,
  and: 4,
  compare: 5,
  add: 6,
  mul: 7,
  prefix: 8,
  postfix: 9,
};

const commaSep = (rule) => optional(seq(rule, repeat(seq(',', rule)), optional(',')));

module.exports = grammar({
  name: 'ft',

  extras: ($) => [/\s/, '\uFEFF', $.comment],

  // Keywords are lexed as identifiers first, then matched; see `keyword`
  // in ft.pest.
  word: ($) => $.identifier,

  rules: {
    source_file: ($) => repeat($._item),

    _item: ($) => choice($.import, $.let, $.block),

    import: ($) =>
      seq('import', field('path', $.string), optional(seq('as', field('alias', $.identifier)))),

    let: ($) => seq('let', field('name', $.identifier), '=', field('value', $._expression)),

    // `model encoder = hf("…") { … }`, `peft lora { … }`, `train { … }`.
    // prec.right: `train evaluate { }` reads `evaluate` as the name, like
    // the PEG's greedy optional.
    block: ($) =>
      prec.right(
        seq(
          field('keyword', $.identifier),
          optional(field('name', $.identifier)),
          optional(seq('=', field('source', $._expression))),
          optional(field('body', $.body)),
        ),
      ),

    body: ($) => seq('{', repeat(seq($._entry, optional(','))), '}'),

    _entry: ($) => choice($.assignment, $.axis, $.sub_block),

    assignment: ($) => seq(field('key', $.identifier), '=', field('value', $._expression)),

    // A sweep axis: `train.optimizer.lr in [1e-4, 3e-4]`.
    axis: ($) =>
      seq(field('path', alias($.path, $.axis_path)), 'in', field('values', $._expression)),

    // `stage short { … }`.
    sub_block: ($) =>
      seq(field('keyword', $.identifier), optional(field('name', $.identifier)), field('body', $.body)),

    _expression: ($) =>
      choice(
        $.if_expression,
        $.binary_expression,
        $.unary_expression,
        $.postfix_expression,
        $._primary,
      ),

    _primary: ($) =>
      choice($.number, $.string, $.boolean, $.list, $.record, $.call, $.path, $.parenthesized),

    if_expression: ($) =>
      prec.right(
        PREC.if,
        seq(
          'if',
          field('condition', $._expression),
          'then',
          field('consequence', $._expression),
          'else',
          field('alternative', $._expression),
        ),
      ),

    binary_expression: ($) => {
      const table = [
        [PREC.where, 'where'],
        [PREC.from, 'from'],
        [PREC.or, 'or'],
        [PREC.and, 'and'],
        [PREC.compare, choice('==', '!=', '<=', '>=', '<', '>')],
        [PREC.add, choice('+', '-')],
        [PREC.mul, choice('*', '/')],
      ];
      return choice(
        ...table.map(([p, op]) =>
          prec.left(
            /** @type {number} */ (p),
            seq(
              field('left', $._expression),
              field('operator', /** @type {RuleOrLiteral} */ (op)),
              field('right', $._expression),
            ),
          ),
        ),
      );
    },

    unary_expression: ($) =>
      prec(PREC.prefix, seq(field('operator', choice('-', 'not')), field('operand', $._expression))),

    postfix_expression: ($) =>
      prec(
        PREC.postfix,
        seq(field('operand', $._expression), field('operator', choice('ascending', 'descending'))),
      ),

    parenthesized: ($) => seq('(', $._expression, ')'),

    call: ($) =>
      seq(field('function', $.identifier), '(', commaSep(choice($.named_argument, $._expression)), ')'),

    named_argument: ($) => seq(field('name', $.identifier), '=', field('value', $._expression)),

    list: ($) => seq('[', commaSep(choice($.pair, $._expression)), ']'),

    // A chat message in a list: `user: "{question}"`.
    pair: ($) => seq(field('role', $.identifier), ':', field('value', $._expression)),

    record: ($) => seq('{', repeat(seq($.field, optional(','))), '}'),

    field: ($) => seq(field('key', $.identifier), '=', field('value', $._expression)),

    // `val.accuracy`, `tasks`. The dots are immediate, as in pest's `$` rule.
    path: ($) => seq($.identifier, repeat(seq(token.immediate('.'), $.identifier))),

    // 2e-4, 80%, 10_000.
    number: (_) => token(/\d[\d_]*(\.\d[\d_]*)?([eE][+-]?\d[\d_]*)?%?/),

    boolean: (_) => choice('true', 'false'),

    string: ($) => choice($._short_string, $._long_string),

    _short_string: ($) =>
      seq(
        '"',
        repeat(
          choice(
            alias($._short_content, $.string_content),
            $.escape_sequence,
            $.brace_escape,
            $.placeholder,
            alias($._lone_brace, $.string_content),
          ),
        ),
        token.immediate('"'),
      ),

    // Raw: no escapes, may span lines, ends at the first `"""`.
    _long_string: ($) =>
      seq(
        '"""',
        repeat(
          choice(
            alias($._long_content, $.string_content),
            alias($._long_quotes, $.string_content),
            $.brace_escape,
            $.placeholder,
            alias($._lone_brace, $.string_content),
          ),
        ),
        token.immediate('"""'),
      ),

    // prec(1): text inside a string wins over a comment starting with `#`.
    _short_content: (_) => token.immediate(prec(1, /[^"\\{}\n]+/)),
    _long_content: (_) => token.immediate(prec(1, /[^"{}]+/)),
    // One or two quotes inside a long string; three close it (longer match).
    _long_quotes: (_) => token.immediate(/""?/),

    escape_sequence: (_) => token.immediate(/\\./),

    // `{{` and `}}` are literal braces in templates.
    brace_escape: (_) => token.immediate(choice('{{', '}}')),

    // A template placeholder: `{field}` or `{nested.field}`; field names are
    // letters, digits, `_`, `-`, spaces and dots (check/types.rs).
    placeholder: ($) =>
      seq(
        token.immediate('{'),
        optional(alias(token.immediate(/[\w .\-]+/), $.field_name)),
        token.immediate('}'),
      ),

    // Braces that are not a placeholder are text, as in a Jinja chat
    // template (`{% for m in messages %}`) or a regex: a `{` followed by a
    // character no field name has (longer than `{`, so it wins), or a lone
    // `}` (lowest precedence, so `}}` and a placeholder's `}` win).
    _lone_brace: (_) =>
      choice(token.immediate(/\{[^\w .\-{}"\n][^{}"\\\n]*/), token.immediate(prec(-1, '}'))),

    identifier: (_) => /[A-Za-z_][A-Za-z0-9_]*/,

    comment: (_) => token(seq('#', /.*/)),
  },
});
