// The official openai Node SDK's parse() (zod response format), whole and streamed, against the
// gateway. Usage: node parse.mjs BASE_URL API_KEY MODEL. Prints one JSON line of what it parsed.
import OpenAI from "openai";
import { zodResponseFormat } from "openai/helpers/zod";
import { z } from "zod";

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const Weather = z.object({ city: z.string() });
const request = {
  model,
  messages: [{ role: "user", content: "Weather in Paris?" }],
  response_format: zodResponseFormat(Weather, "Weather"),
};
const whole = await client.chat.completions.parse(request);
const streamed = await client.chat.completions.stream(request).finalChatCompletion();
console.log(JSON.stringify({
  version: OpenAI.VERSION ?? null,
  content: whole.choices[0].message.content,
  whole: whole.choices[0].message.parsed,
  streamed: streamed.choices[0].message.parsed,
}));
