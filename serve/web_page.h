// serve/web_page.h: the page GET / serves: pick an image, audio or video file, type a prompt, and watch the answer
// stream in (it posts to /v1/chat/completions with stream: true, the file as a data URL). Shipped in the binary;
// no data of the server is in it, so it needs no API key (the page asks for one when the server wants it).
#pragma once

namespace llama_mm::serve {

const char* web_page_html();

}  // namespace llama_mm::serve
