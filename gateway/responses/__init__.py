"""OpenAI's Responses API over the chat path: translation, stream events, stored responses."""
