// serve/web_page.cpp: the try-it page (see web_page.h). Plain HTML and JavaScript, no external resources.
#include "serve/web_page.h"

namespace llama_mm::serve {

const char* web_page_html() {
  return R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>llama-mm</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; }
  label { display: block; margin: .8rem 0 .3rem; font-weight: 600; }
  input[type=text], input[type=password], textarea { width: 100%; box-sizing: border-box; padding: .4rem; }
  textarea { height: 4rem; }
  button { margin-top: 1rem; padding: .5rem 1.2rem; }
  #answer { white-space: pre-wrap; border: 1px solid #ccc; border-radius: 4px; padding: .8rem; min-height: 3rem;
            margin-top: 1rem; background: #fafafa; }
  #status { color: #666; font-size: .9rem; margin-top: .5rem; }
  .error { color: #b00; }
  .row { display: flex; gap: 2rem; }
</style>
</head>
<body>
<h1>llama-mm</h1>
<p id="model">Loading the model list&hellip;</p>
<label for="file">Image, audio or video file (optional)</label>
<input type="file" id="file" accept="image/*,audio/*,video/*">
<label for="prompt">Prompt</label>
<textarea id="prompt">Describe this image in one sentence.</textarea>
<div class="row">
  <span><label for="temperature">Temperature (0: greedy)</label>
  <input type="number" id="temperature" value="0.8" min="0" max="2" step="0.1"></span>
  <span><label for="max_tokens">Max tokens</label>
  <input type="number" id="max_tokens" value="256" min="1" step="1"></span>
</div>
<label for="key">API key (if the server needs one)</label>
<input type="password" id="key" autocomplete="off">
<button id="send">Send</button>
<div id="answer" aria-live="polite"></div>
<div id="status"></div>
<script>
const $ = (id) => document.getElementById(id);
function headers() {
  const h = {"Content-Type": "application/json"};
  if ($("key").value) h["Authorization"] = "Bearer " + $("key").value;
  return h;
}
async function showModel() {
  try {
    const r = await fetch("/v1/models", {headers: headers()});
    const j = await r.json();
    if (!r.ok) throw new Error(j.error ? j.error.message : r.statusText);
    const m = j.data[0];
    $("model").textContent = "Model " + m.id + " (input: " + m.architecture.input_modalities.join(", ") + ")";
  } catch (e) {
    $("model").textContent = "Model list: " + e.message;
  }
}
function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}
async function mediaPart(file) {
  const url = await readAsDataUrl(file);
  const type = file.type || "";
  if (type.startsWith("audio/"))
    return {type: "input_audio", input_audio: {data: url.slice(url.indexOf(",") + 1), format: type.split("/")[1] || "wav"}};
  if (type.startsWith("video/")) return {type: "video_url", video_url: {url}};
  return {type: "image_url", image_url: {url}};
}
async function send() {
  const answer = $("answer"), status = $("status");
  answer.textContent = "";
  answer.classList.remove("error");
  status.textContent = "Sending\u2026";
  $("send").disabled = true;
  try {
    const content = [];
    const file = $("file").files[0];
    if (file) content.push(await mediaPart(file));
    content.push({type: "text", text: $("prompt").value});
    const r = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(),
      body: JSON.stringify({messages: [{role: "user", content}], stream: true, stream_options: {include_usage: true},
                            temperature: Number($("temperature").value), max_tokens: Number($("max_tokens").value)})
    });
    if (!r.ok) {
      const j = await r.json().catch(() => ({}));
      throw new Error(j.error ? j.error.message : r.status + " " + r.statusText);
    }
    const reader = r.body.getReader(), decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        if (!event.startsWith("data: ")) continue;
        const data = event.slice(6);
        if (data === "[DONE]") { if (!status.textContent.startsWith("Done")) status.textContent = "Done."; continue; }
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        for (const c of chunk.choices || [])
          if (c.delta && c.delta.content) answer.textContent += c.delta.content;
        if (chunk.usage)
          status.textContent = "Done: " + chunk.usage.prompt_tokens + " prompt tokens, " +
                               chunk.usage.completion_tokens + " generated.";
        else if (!status.textContent.startsWith("Done")) status.textContent = "Streaming\u2026";
      }
    }
  } catch (e) {
    answer.classList.add("error");
    answer.textContent = e.message;
    status.textContent = "";
  } finally {
    $("send").disabled = false;
  }
}
$("send").addEventListener("click", send);
$("key").addEventListener("change", showModel);
showModel();
</script>
</body>
</html>
)HTML";
}

}  // namespace llama_mm::serve
