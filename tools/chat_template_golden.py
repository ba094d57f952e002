#!/usr/bin/env python3
"""Golden outputs for SharpLM's chat template engine, rendered by the reference: Jinja2 (3.1.x) configured exactly as
Hugging Face transformers' apply_chat_template does it (transformers/utils/chat_template_utils.py):
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]), tojson = json.dumps(
ensure_ascii=False, ...), raise_exception and strftime_now globals.

usage: SHARPLM_TEST_ASSETS=/path/to/.cache/assets python3 tools/chat_template_golden.py > tests/testdata/chat-templates/golden.json
"""
import json
import os
import sys

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "testdata", "chat-templates")
ASSETS = os.environ.get("SHARPLM_TEST_ASSETS", os.path.join(HERE, "..", ".cache", "assets"))


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def template_text(case):
    if "template" in case:
        return case["template"]
    if "fixture" in case:
        with open(os.path.join(FIXTURES, case["fixture"]), encoding="utf-8") as f:
            return f.read()
    with open(os.path.join(ASSETS, *case["asset"].split("/")), encoding="utf-8") as f:
        return json.load(f)["chat_template"]


def msgs(*pairs):
    return [{"role": r, "content": c} for r, c in pairs]


LLAMA = {"bos_token": "<s>", "eos_token": "</s>"}
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city, e.g. \"Zürich\"",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
CONVERSATIONS = {
    "system_user": msgs(("system", "You are helpful."), ("user", "Hi")),
    "user": msgs(("user", "  Hi there \n")),
    "multi": msgs(("user", "Hi"), ("assistant", "Hello!"), ("user", "How are you?")),
    "system_multi": msgs(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!"), ("user", "How are you?")),
    "bad_alternation": msgs(("user", "a"), ("user", "b")),
    "thinking": msgs(("user", "1+1?"), ("assistant", "<think>\nadd\n</think>\n\n2"), ("user", "and 2+2?")),
    "thinking_last": msgs(("user", "q"), ("assistant", "<think>\nr\n</think>\n\na")),
    "tools": msgs(("user", "w?"), ("assistant", "calling"), ("tool", "{\"t\": 20}"), ("tool", "{\"t\": 21}")),
    "unicode": msgs(("system", "Réponds en français 🙂"), ("user", "Ça va ?\tOui")),
    # OpenAI-style rich messages: tool calls (arguments as a dict and as a JSON string) and reasoning_content
    "tool_calls": [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]},
        {"role": "tool", "content": "{\"t\": 20}"},
        {"role": "tool", "content": "{\"t\": 25}"},
        {"role": "assistant", "content": "Paris 20, Rome 25.", "reasoning_content": "Both answered."},
    ],
}

# Gemma 3's multimodal content: a list of parts; Phi-4-mini's tools given in the system message
CONVERSATIONS["content_parts"] = [
    {"role": "system", "content": [{"type": "text", "text": "Answer briefly."}]},
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": " What is this? "}]},
    {"role": "assistant", "content": "A cat."},
    {"role": "user", "content": [{"type": "text", "text": "And its colour?"}]},
]
CONVERSATIONS["system_tools"] = [
    {"role": "system", "content": "You can call tools.", "tools": json.dumps([TOOL])},
    {"role": "user", "content": "Weather in Paris?"},
]

CASES = []
for fixture, extra, convs in [
    ("gemma2-it.jinja", {"bos_token": "<bos>"}, ["user", "multi", "system_user", "bad_alternation"]),
    ("gemma3-it.jinja", {"bos_token": "<bos>"}, ["user", "multi", "system_user", "system_multi", "bad_alternation", "unicode", "content_parts"]),
    ("phi3-instruct.jinja", {"eos_token": "<|endoftext|>"}, ["user", "multi", "system_user", "unicode"]),
    ("phi4-mini-instruct.jinja", {"eos_token": "<|endoftext|>"}, ["user", "multi", "system_user", "system_tools"]),
    ("smollm2-instruct.jinja", {}, ["user", "multi", "system_user"]),
    ("llama2-chat.jinja", LLAMA, ["system_user", "user", "multi", "system_multi", "bad_alternation", "unicode"]),
    ("llama3-instruct.jinja", {"bos_token": "<|begin_of_text|>"}, ["system_user", "user", "system_multi", "unicode"]),
    ("mistral-instruct.jinja", LLAMA, ["user", "multi", "system_user", "bad_alternation"]),
    ("chatml.jinja", {}, ["system_user", "multi", "tools", "unicode"]),
    ("tinyllama-chat.jinja", LLAMA, ["system_user", "multi", "user", "unicode"]),
    ("qwen2.5-instruct.jinja", {}, ["system_user", "user", "multi", "tools", "unicode", "tool_calls"]),
]:
    for conv in convs:
        for gen in (False, True):
            CASES.append({"name": f"{fixture}:{conv}:{gen}", "fixture": fixture, "messages": CONVERSATIONS[conv],
                          "add_generation_prompt": gen, "extra": extra})
CASES.append({"name": "qwen2.5-instruct.jinja:tools-defined", "fixture": "qwen2.5-instruct.jinja",
              "messages": CONVERSATIONS["user"], "add_generation_prompt": True, "extra": {"tools": [TOOL]}})
for asset, extra in [("npm/tokenizer-llama3/models/tokenizer_config.json", {"bos_token": "<|begin_of_text|>"}),
                     ("npm/tokenizer-qwen3/models/tokenizer_config.json", {})]:
    for conv in ["system_user", "multi", "thinking", "thinking_last", "tools", "unicode"] + (["tool_calls"] if "qwen3" in asset else []):
        for gen in (False, True):
            CASES.append({"name": f"{asset}:{conv}:{gen}", "asset": asset, "messages": CONVERSATIONS[conv],
                          "add_generation_prompt": gen, "extra": extra})
    CASES.append({"name": f"{asset}:no-thinking", "asset": asset, "messages": CONVERSATIONS["user"],
                  "add_generation_prompt": True, "extra": dict(extra, enable_thinking=False)})
    CASES.append({"name": f"{asset}:tools-defined", "asset": asset, "messages": CONVERSATIONS["system_user"],
                  "add_generation_prompt": True, "extra": dict(extra, tools=[TOOL])})

# single Jinja rules (whitespace control, expressions, filters, tests, scoping)
SNIPPETS = [
    "{% if true %}\n  x\n{% endif %}\n", "  {% if true %}x{% endif %}", "a\n    {% if true %}x{% endif %}",
    "a  {% if true %}x{% endif %}", "  {{ 'x' }}", "{{ 'a' }}\n{{ 'b' }}", "x  {{- 'y' -}}  \n z",
    "{%- if true -%}  a  {%- endif %}", "  {%+ if true %}x{% endif %}", "{# comment #}\nx", "a {#- c -#} b",
    "line\n", "line\n\n", "{% for i in [1, 2, 3] %}\n  {{ i }}\n{% endfor %}", "{% if true %}a{% endif %}  \n  {% if true %}b{% endif %}",
    "\t{% for i in [1] %}\t{{ i }}{% endfor %}\n", "  {# c #}  x", "{% if true %}\n{% endif %}\n\n",
    "{{ [1, 'a', none, true, 2.5] }}", "{{ {'k': 'v', 'q': \"it's\"} }}", "{{ 1 + 2 * 3 }}|{{ 7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 7 / 2 }}|{{ 2 ** 10 }}",
    "{{ 1.5e3 }}|{{ 0.1 + 0.2 }}|{{ 10 / 4 }}|{{ -3 // 2 }}|{{ 1e-7 }}|{{ 3.0 }}",
    "{{ 'a' ~ 1 ~ none }}|{{ 'a' + 'b' }}", "{{ 'abcdef'[1:] }}|{{ 'abcdef'[::-1] }}|{{ 'abcdef'[-2:] }}|{{ [1,2,3][:-1] }}|{{ 'abc'[0] }}|{{ [1,2,3,4,5][::2] }}|{{ [1,2,3][5:] }}|{{ 'abc'[-10:2] }}",
    "{{ '  x '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\nab'.lstrip('\\n') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}",
    "{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'c')) }}|{{ 'a</think>b'.split('</think>')[-1] }}|{{ 'Hello'.upper() }}|{{ 'a-b'.replace('-', '+') }}",
    "{{ '  Hi  ' | trim }}|{{ [1, 2] | length }}|{{ 'ab' | upper }}|{{ 'AB' | lower }}|{{ 3 | string }}|{{ 'abc' | length }}",
    "{{ x | default('d') }}|{{ '' | default('d') }}|{{ '' | default('d', true) }}|{{ none | default('d') }}",
    "{{ [1, 2, 3] | first }}|{{ [1, 2, 3] | last }}|{{ ['a', 'b'] | join(', ') }}|{{ [3, 1, 2] | sort | list }}|{{ [1, 2] | join }}",
    "{{ {'a': [1, 2], 'b': 'é\"\\\\', 'c': none, 'd': true, 'e': 1.5} | tojson }}", "{{ {'a': 1, 'b': [1, {'c': 2}], 'e': []} | tojson(indent=2) }}",
    "{{ 'x\\ny\\t\\u0001' | tojson }}", "{{ [] | tojson }}|{{ {} | tojson }}",
    "{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}", "{% for x in [] %}y{% else %}empty{% endfor %}",
    "{% for x in [1, 2, 3, 4] if x is even %}{{ x }}{{ loop.index }}{% endfor %}",
    "{% for x in 'ab' %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }};{% endfor %}",
    "{% for x in [1, 2, 3] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 3 %}{% break %}{% endif %}{{ x }}{% endfor %}",
    "{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}",
    "{% set ns = namespace(x=1) %}{% for i in [1] %}{% set ns.x = 2 %}{% endfor %}{{ ns.x }}",
    "{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}", "{% set a, b = 1, 2 %}{{ a }}{{ b }}",
    "{% set s %}in{{ 1 }}{% endset %}[{{ s }}]",
    "{{ x is defined }}|{{ none is none }}|{{ 'a' is string }}|{{ {} is mapping }}|{{ x is not defined }}|{{ 1 is number }}|{{ [] is iterable }}",
    "{{ 'b' in 'abc' }}|{{ 2 in [1, 2] }}|{{ 'k' in {'k': 1} }}|{{ 3 not in [1] }}",
    "{{ 'y' if false else 'n' }}|{{ 'y' if true }}|{{ 1 if none is none and not false or x else 2 }}|{{ 'y' if false }}|",
    "{{ [1, 2, 3] | length - 1 }}|{{ not true == false }}|{{ 1 < 2 and 2 < 3 }}",
    "{{ {'role': 'user'}.role }}|{{ {'role': 'user'}['role'] }}|{{ {'a': 1}.missing }}|{{ {'a': 1}.get('b', 5) }}|{{ {'a': 1}.keys() | list }}",
    "{{ range(3) | list }}|{{ [{'n': 'a'}, {'n': 'b'}] | map(attribute='n') | join }}|{{ range(1, 7, 2) | list }}",
    "{{ [{'r': 'u'}, {'r': 'a'}] | selectattr('r', 'equalto', 'a') | list | length }}|{{ [1, 2, 3] | reject('odd') | list }}",
    "{{ 'a' \"b\" }}|{{ \"it's\" }}|{{ 'tab\\tnl\\n' }}|{{ 'q\\'s' }}", "{{ (1, 2) }}|{{ [(1, 'a')] }}|{{ 'Hi' * 2 }}",
    "{{ messages | length }}{% for m in messages %}[{{ m.role }}:{{ m['content'] }}]{% endfor %}{{ add_generation_prompt }}",
    "{{ x }}|{{ x.y is defined if x is defined else 'nd' }}", "{{ true }}|{{ True }}|{{ none }}|{{ None }}|{{ false | string }}",
    "{{ 'Hello World' | title }}|{{ 'hello' | capitalize }}|{{ [1, 2, 1] | unique | list }}|{{ [1, 2] | reverse | list }}|{{ -3 | abs }}",
    "{{ 'a\nb' | indent(2) }}|{{ '%s' | length }}|{{ 'x' | int }}|{{ '42' | int + 1 }}|{{ 2 | float }}",
    "{{ 123.456 }}|{{ 1e15 }}|{{ 999999999999999.9 }}|{{ 1.5e-5 }}|{{ 0.001 }}|{{ -2.5e+30 }}|{{ 100.0 }}|{{ 5e-324 }}|{{ 1.7976931348623157e308 }}",
    "{{ 'a🙂b' | length }}|{{ 'a🙂b'[1] }}|{{ 'a🙂b'[:2] }}|{{ 'a🙂b'[::-1] }}|{{ 'a🙂b' | reverse }}|{% for c in '🙂x' %}[{{ c }}]{% endfor %}|{{ 'a🙂b' | first }}{{ '🙂' | last }}",
    "{{ 1/3 }}|{{ 1e20 }}|{{ 123456789012345678.0 }}|{{ 0.0001 }}|{{ 0.00001 }}|{{ 1e16 }}|{{ 2.5e-3 * 2 }}|{{ -0.0 }}",
    "{% for i in [1, 2, 3] %}{% if i > 1 %}[{{ x }}]{% endif %}{% set x = i %}{{ x }}{% endfor %}|{{ x }}",
    "{% set x = 'outer' %}{% for i in [1] %}{{ x }}{% set x = 'inner' %}{{ x }}{% endfor %}{{ x }}",
    "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ a }}{{ b }}{% endfor %}{{ loop.index }};{% endfor %}",
    "{{ [1, 2] | string }}|{{ {'a': 1} | items | list }}|{{ ['b', 'a'] | sort | join('-') }}|{{ [1, [2, 3]] | tojson }}",
    "{% if messages | selectattr('role', 'equalto', 'system') | list | length == 0 %}no system{% endif %}",
    "{%- for m in messages -%}\n  {{- m.role | upper -}}\n  {%- if not loop.last %}, {% endif -%}\n{%- endfor %}",
    "{{ messages[-1].content }}|{{ (messages | last).role }}|{{ messages[0]['content'][:3] }}|{{ messages | map(attribute='role') | unique | list }}",
    # string literals are decoded as Python's unicode-escape decodes them
    "{{ 'a\\nb\\t|\\a\\b\\f\\v|\\012|\\0|\\101|\\1x|\\08|\\777|\\x41|\\u00e9|\\U0001F600|\\q|\\/|\\'|\\\"|\\\\|\\8' }}",
    "{{ 'two\nlines' }}|{{ \"a\\\nb\" }}|{{ \"it\\'s \\\"q\\\"\" }}|{{ 'end\\\\' }}|{{ '\\x4a\\x4A' }}",
]
for i, s in enumerate(SNIPPETS):
    CASES.append({"name": f"snippet:{i}", "template": s, "messages": CONVERSATIONS["multi"], "add_generation_prompt": True, "extra": {}})

STRESS = """{#- a tool-calling style template exercising what real templates use -#}
{%- set user_messages = messages | selectattr("role", "equalto", "user") | list %}
{%- set ns = namespace(index=0, seen=[], last_user='') %}
{%- if messages[0].role == 'system' %}
    {%- set system = messages[0].content | trim %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set system = extra_system | default('You are a helpful assistant.') %}
    {%- set loop_messages = messages %}
{%- endif %}
{{- bos_token ~ '[SYS]' ~ system ~ '[/SYS]' }}
{%- if tools is defined and tools is not none %}
    {{- '\n[TOOLS]' + tools | tojson(indent=4) + '[/TOOLS]' }}
    {%- for t in tools if t.function is mapping %}
        {{- '\n- ' ~ t.function.name ~ ': ' ~ t.function.get('description', 'n/a') }}
        {%- for k, v in t.function.parameters.properties | items %}
            {{- ' (' ~ k ~ ':' ~ v.type ~ ')' }}
        {%- endfor %}
    {%- endfor %}
{%- endif %}
{%- for message in loop_messages %}
    {%- if message.role == 'user' %}
        {%- set ns.last_user = message.content %}
        {%- if loop.previtem is defined and loop.previtem.role == 'user' %}
            {{- raise_exception('two user messages in a row at ' ~ loop.index0) }}
        {%- endif %}
        {{- '\n[INST] ' + message.content.strip() + ' [/INST]' }}
    {%- elif message.role == 'assistant' %}
        {#- strip a reasoning block if there is one #}
        {%- if '</think>' in message.content %}
            {%- set content = message.content.split('</think>')[-1].lstrip() %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- ' ' ~ content ~ eos_token }}
    {%- elif message.role == 'tool' %}
        {{- '\n[TOOL_RESULTS] ' ~ message.content ~ ' [/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception('unknown role: ' + message.role) }}
    {%- endif %}
    {%- set ns.index = ns.index + 1 %}
{%- endfor %}
{{- '\n' ~ '=' * 3 ~ ' ' ~ user_messages | length ~ ' user turns, ' ~ ns.index ~ ' in the loop, last: ' ~ ns.last_user[:10] ~ ' ' ~ '=' * 3 }}
{%- if add_generation_prompt %}{{ '\n[ASSISTANT]' }}{% endif %}
"""
for conv in ["system_user", "multi", "system_multi", "thinking", "tools", "unicode", "bad_alternation"]:
    for gen in (False, True):
        CASES.append({"name": f"stress:{conv}:{gen}", "template": STRESS, "messages": CONVERSATIONS[conv], "add_generation_prompt": gen,
                      "extra": {"bos_token": "<s>", "eos_token": "</s>"}})
CASES.append({"name": "stress:tools-defined", "template": STRESS, "messages": CONVERSATIONS["multi"], "add_generation_prompt": True,
              "extra": {"bos_token": "<s>", "eos_token": "</s>", "tools": [TOOL], "extra_system": "Custom system."}})

MACROS = """{%- macro json_to_python_type(json_spec) %}
{%- set basic_type_map = {"string": "str", "number": "float", "integer": "int", "boolean": "bool"} %}
{%- if basic_type_map[json_spec.type] is defined %}
    {{- basic_type_map[json_spec.type] }}
{%- elif json_spec.type == "array" %}
    {{- "list[" +  json_to_python_type(json_spec['items']) + "]" }}
{%- elif json_spec.type == "object" %}
    {{- "dict[str, " + json_to_python_type(json_spec.additionalProperties) + ']' if json_spec.additionalProperties is defined else "dict" }}
{%- else %}
    {{- "Any" }}
{%- endif %}
{%- endmacro %}
{%- macro greet(name, punct='!') -%}
Hello {{ name }}{{ punct }}
{%- endmacro -%}
{{ greet('you') }} {{ greet(name='there', punct='?') }}
{%- for tool in tools %}
{{ tool.function.name }}({% for n, spec in tool.function.parameters.properties | items %}{{ n }}: {{ json_to_python_type(spec) }}{% if not loop.last %}, {% endif %}{% endfor %})
{%- endfor %}
"""
MACRO_TOOL = {"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {
    "query": {"type": "string"}, "limit": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}},
    "filters": {"type": "object", "additionalProperties": {"type": "number"}}, "raw": {"type": "object"}, "x": {"type": "null"}}}}}
CASES.append({"name": "macros:hermes-style", "template": MACROS, "messages": [], "add_generation_prompt": False, "extra": {"tools": [MACRO_TOOL, TOOL]}})

ERRORS = ["{% foo %}", "{{ 1 + }}", "{% if x %}open", "{% for x in y %}", "x {% endif %}", "{{ 'abc }}", "{{ x | nope }}",
          "{{ undefined_thing.attr }}", "{{ 'a' + 1 }}", "{{ raise_exception('bad role') }}", "{{ 1 // 0 }}",
          "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}", "{% macro m(a) %}{{ a }}",
          "{{ '\\xZZ' }}", "{{ '\\u12' }}", "{{ '\\x4' }}", "{{ '\\U00110000' }}", "{{ 'a\\' }}"]
for i, s in enumerate(ERRORS):
    CASES.append({"name": f"error:{i}", "template": s, "messages": [], "add_generation_prompt": False, "extra": {}})


def main():
    env = environment()
    out = []
    for case in CASES:
        c = dict(case)
        try:
            tmpl = env.from_string(template_text(case))
            c["expected"] = tmpl.render(messages=case["messages"], add_generation_prompt=case["add_generation_prompt"], **case["extra"])
        except Exception as e:  # the error text differs between engines: only that it fails is compared
            c["error"] = type(e).__name__ + ": " + str(e)
        out.append(c)
    json.dump({"magic": "sharplm-chat-template-golden", "version": 1, "jinja2": jinja2.__version__,
               "generator": "tools/chat_template_golden.py", "cases": out}, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
