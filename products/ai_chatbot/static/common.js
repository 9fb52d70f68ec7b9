// The customer page's shared parts: its state, the API client, the element lookup.

import { makeApi } from "/shared/http.js";

export const STORAGE_KEY = "cs-chat-session";

export const $ = (id) => document.getElementById(id);

export const state = {
  name: null,
  token: null,
  status: null,
  agentId: null,
  hadAgent: false,
  waitStart: null,
  waitingSince: null,
  queuePosition: null,
  estimatedWait: null,
  rated: false,
  score: 0,
  limits: { message_max_chars: 4000 },
  counter: null,
  stream: null,
  messages: new Set(), // message ids on screen
  notices: new Set(), // event ids of status notices on screen
  typingTimer: null,
  waitTimer: null,
};

export const api = makeApi({
  getToken: () => state.token,
  unreachable: "The service cannot be reached right now. Please try again.",
});

export const sessionPath = () => `/api/sessions/${encodeURIComponent(state.name)}`;

export function showError(text) {
  $("chat-error").textContent = text;
}
