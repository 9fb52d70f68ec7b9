// Attachments on both pages (the same file ships with both services): the paperclip
// button, the upload, and how a file's message shows (an image as a thumbnail that opens
// the picture, a PDF as a chip with its name and size).
//
// Files are fetched by plain URLs: the page's HttpOnly cookie rides along (as for the
// event stream); an image that fails to load once is asked again with `?token=` (a page
// whose cookie expired or was blocked), as the stream does.

import { ApiError, detailOf } from "/shared/http.js";

export const ACCEPT = "image/png,image/jpeg,image/gif,image/webp,application/pdf";
const ACCEPTED_TYPES = new Set(ACCEPT.split(","));

export function humanSize(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1).replace(/\.0$/, "")} MB`;
  if (bytes >= 1024) return `${Math.floor(bytes / 1024)} KB`;
  return `${bytes} bytes`;
}

function fileUrl(sessionPath, attachment, thumbnail) {
  const base = `${sessionPath}/attachments/${encodeURIComponent(attachment.id)}`;
  return thumbnail ? `${base}/thumbnail` : base;
}

/** What a file's message shows in place of its text. */
export function attachmentView(sessionPath, attachment, getToken) {
  const link = document.createElement("a");
  link.href = fileUrl(sessionPath, attachment, false);
  link.target = "_blank";
  link.rel = "noopener";
  link.title = `${attachment.filename} · ${humanSize(attachment.size)}`;
  if (attachment.thumbnail) {
    link.className = "attachment attachment-image";
    const img = document.createElement("img");
    img.alt = attachment.filename;
    img.loading = "lazy";
    img.src = fileUrl(sessionPath, attachment, true);
    img.addEventListener("error", () => {
      const token = getToken();
      if (img.dataset.retried || !token) return;
      img.dataset.retried = "1";
      img.src = `${fileUrl(sessionPath, attachment, true)}?token=${encodeURIComponent(token)}`;
    });
    link.append(img);
    return link;
  }
  link.className = "attachment attachment-file";
  const icon = document.createElement("span");
  icon.className = "attachment-icon";
  icon.setAttribute("aria-hidden", "true");
  icon.textContent = attachment.content_type === "application/pdf" ? "PDF" : "FILE";
  const name = document.createElement("span");
  name.className = "attachment-name";
  name.textContent = attachment.filename;
  const size = document.createElement("span");
  size.className = "attachment-size";
  size.textContent = humanSize(attachment.size);
  link.append(icon, name, size);
  return link;
}

/** Why a file would be refused, before sending it (the server checks again, by its bytes). */
export function refusal(file, maxBytes) {
  if (!file.size) return `"${file.name}" is empty.`;
  if (maxBytes && file.size > maxBytes) {
    return `"${file.name}" is ${humanSize(file.size)}: files up to ${humanSize(maxBytes)} can be sent.`;
  }
  if (file.type && !ACCEPTED_TYPES.has(file.type)) {
    return `"${file.name}" cannot be sent: only images (PNG, JPEG, GIF, WebP) and PDF files.`;
  }
  return "";
}

/** POST the file; resolves to the message that carries it, or throws an ApiError. */
export async function upload(sessionPath, file, token) {
  const body = new FormData();
  body.append("file", file, file.name);
  let response;
  try {
    response = await fetch(`${sessionPath}/attachments`, {
      method: "POST",
      headers: token ? { Authorization: `Bearer ${token}`, Accept: "application/json" } : {},
      body,
    });
  } catch {
    throw new ApiError(0, "The service cannot be reached right now. Please try again.");
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, detailOf(data) || `HTTP ${response.status}`);
  return data;
}

/**
 * The paperclip: `button` opens the file picker (`input`, type=file); each file picked is
 * checked, sent, and handed to `onSent(message)`; a refusal goes to `onError(text)`.
 */
export function wireAttach({ button, input, sessionPath, getToken, getMaxBytes, onSent, onError }) {
  input.accept = ACCEPT;
  button.addEventListener("click", () => input.click());
  input.addEventListener("change", async () => {
    const picked = [...input.files];
    input.value = "";
    for (const file of picked) {
      const why = refusal(file, getMaxBytes());
      if (why) {
        onError(why);
        continue;
      }
      button.disabled = true;
      button.classList.add("busy");
      try {
        onSent(await upload(sessionPath(), file, getToken()));
        onError("");
      } catch (error) {
        onError(`Not sent: ${error.message}`);
      } finally {
        button.disabled = false;
        button.classList.remove("busy");
      }
    }
  });
}
