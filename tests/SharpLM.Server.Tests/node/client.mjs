// Drives a SharpLM server with the official OpenAI JavaScript client (npm "openai"), as a user's app would.
// usage: node client.mjs <path to the openai package> <base URL ending in /v1>
// Prints one JSON object with what came back; the C# test checks it.
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const [pkg, baseURL] = process.argv.slice(2);
const { default: OpenAI } = await import(pathToFileURL(path.join(pkg, 'index.mjs')).href);
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 120000 });
const out = {};

const models = await client.models.list();
out.models = models.data.map(m => m.id);

const chat = await client.chat.completions.create({
  model: 'default', messages: [{ role: 'user', content: 'What did the jury say?' }], max_tokens: 12, temperature: 0,
});
out.chat = { text: chat.choices[0].message.content, finish: chat.choices[0].finish_reason, usage: chat.usage };

const stream = await client.chat.completions.create({
  model: 'default', messages: [{ role: 'user', content: 'What did the jury say?' }], max_tokens: 12, temperature: 0,
  stream: true, stream_options: { include_usage: true },
});
let text = '', chunks = 0, usage = null, finish = null;
for await (const chunk of stream) {
  chunks++;
  for (const c of chunk.choices) { text += c.delta.content ?? ''; if (c.finish_reason) finish = c.finish_reason; }
  if (chunk.usage) usage = chunk.usage;
}
out.stream = { text, chunks, usage, finish };

const completion = await client.completions.create({ model: 'default', prompt: 'The jury said', max_tokens: 8, temperature: 0, echo: true, logprobs: 2 });
out.completion = { text: completion.choices[0].text, logprobs: completion.choices[0].logprobs };

const schema = { type: 'object', properties: { city: { type: 'string', maxLength: 16 }, days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['city', 'days'], additionalProperties: false };
const structured = await client.chat.completions.create({
  model: 'default', messages: [{ role: 'user', content: 'Plan a trip' }], max_tokens: 100, temperature: 0,
  response_format: { type: 'json_schema', json_schema: { name: 'trip', schema, strict: true } },
});
out.structured = structured.choices[0].message.content;

const tools = [{ type: 'function', function: { name: 'lookup', description: 'Look up a word', parameters: { type: 'object', properties: { word: { type: 'string', maxLength: 12 } }, required: ['word'] } } }];
const called = await client.chat.completions.create({
  model: 'default', messages: [{ role: 'user', content: 'Look up "jury"' }], tools, tool_choice: 'required', max_tokens: 120, temperature: 0,
});
out.tool = { finish: called.choices[0].finish_reason, calls: called.choices[0].message.tool_calls };

// the same call streamed, through the client's stream helper (it accumulates the tool_calls deltas)
const runner = client.chat.completions.stream({
  model: 'default', messages: [{ role: 'user', content: 'Look up "jury"' }], tools, tool_choice: 'required', max_tokens: 120, temperature: 0,
});
let argDeltas = 0;
runner.on('tool_calls.function.arguments.delta', () => { argDeltas++; });
const final = await runner.finalChatCompletion();
out.toolStream = { finish: final.choices[0].finish_reason, calls: final.choices[0].message.tool_calls, argDeltas };

const emb = await client.embeddings.create({ model: 'bert_mlm', input: ['the cat', 'the dog'] });
out.embeddings = emb.data.map(d => d.embedding.length);

try {
  await client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] });
  out.error = null;
} catch (e) {
  out.error = { status: e.status, param: e.param, code: e.code, message: e.message };
}
try {
  await client.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'x' }], temperature: 'hot' });
  out.badType = null;
} catch (e) {
  out.badType = { status: e.status, param: e.param };
}

console.log(JSON.stringify(out));
