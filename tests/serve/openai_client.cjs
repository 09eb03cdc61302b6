// Drives a running `llama-mm serve` with the official OpenAI Node client (npm `openai`, installed by
// scripts/setup.sh), used as any application would use it. Prints one JSON object with what came back; the C++
// test (server_test.cpp) checks it against the server's own answers and the CLI.
//   node openai_client.cjs OPENAI_MODULE_DIR BASE_URL API_KEY IMAGE WAV
'use strict';
const fs = require('fs');
const [moduleDir, baseURL, apiKey, imagePath, wavPath] = process.argv.slice(2);
const { OpenAI, toFile } = require(moduleDir);

async function main() {
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120000 });
  const out = { version: require(moduleDir + '/package.json').version };
  const image = fs.readFileSync(imagePath).toString('base64');
  const wav = fs.readFileSync(wavPath);
  const imageMessages = [{
    role: 'user',
    content: [
      { type: 'image_url', image_url: { url: `data:image/bmp;base64,${image}` } },
      { type: 'text', text: 'Describe the image.' },
    ],
  }];

  const models = await client.models.list();
  out.models = models.data.map((m) => m.id);

  const chat = await client.chat.completions.create({ model: out.models[0], messages: imageMessages, max_tokens: 8, temperature: 0 });
  out.image = { content: chat.choices[0].message.content, finish_reason: chat.choices[0].finish_reason, usage: chat.usage };

  const stream = await client.chat.completions.create({
    model: out.models[0], messages: imageMessages, max_tokens: 8, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  out.stream = { content: '', chunks: 0, usage: null, finish_reason: null };
  for await (const chunk of stream) {
    out.stream.chunks += 1;
    if (chunk.usage) out.stream.usage = chunk.usage;
    for (const choice of chunk.choices) {
      out.stream.content += choice.delta.content ?? '';
      if (choice.finish_reason) out.stream.finish_reason = choice.finish_reason;
    }
  }

  const audioChat = await client.chat.completions.create({
    model: out.models[0], max_tokens: 4, temperature: 0,
    messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: wav.toString('base64'), format: 'wav' } }] }],
  });
  out.audio = { content: audioChat.choices[0].message.content, usage: audioChat.usage };

  out.transcriptions = {};
  for (const format of ['json', 'text', 'srt', 'vtt', 'verbose_json']) {
    out.transcriptions[format] = await client.audio.transcriptions.create({
      file: await toFile(wav, 'tone.wav', { type: 'audio/wav' }), model: out.models[0], response_format: format,
    });
  }
  out.translation = await client.audio.translations.create({ file: await toFile(wav, 'tone.wav'), model: out.models[0] });

  try {
    await client.chat.completions.create({
      model: out.models[0], messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,@@@' } }] }],
    });
    out.bad_request = { status: 0 };
  } catch (e) {
    out.bad_request = { status: e.status, class: e.constructor.name, type: e.error && e.error.type };
  }
  try {
    await new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 }).models.list();
    out.bad_key = { status: 0 };
  } catch (e) {
    out.bad_key = { status: e.status, class: e.constructor.name };
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(`openai client: ${e.stack || e}`);
  process.exit(1);
});
