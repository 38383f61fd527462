// Rendered by the tmpl processor (.tmpl.js): settings come from the config.
const currency = {{ configValue('.shop.currency') | tojson }};
let page = 1, sort = "name", rows = 8, total = 0;

function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }

async function load() {
  const url = `list.sqlds?action=pagingdata&page=${page}&rows=${rows}&sort=${encodeURIComponent(sort)}`;
  const data = await (await fetch(url)).json();
  total = data.total;
  const body = document.querySelector("#products tbody");
  body.replaceChildren(...data.rows.map(p => {
    const tr = document.createElement("tr");
    tr.append(cell(p.name), cell(p.category), cell(`${p.price.toFixed(2)} ${currency}`), cell(p.stock));
    return tr;
  }));
  document.getElementById("page").textContent = `${page} / ${Math.max(1, Math.ceil(total / rows))}`;
}

document.getElementById("prev").onclick = () => { if (page > 1) { page--; load(); } };
document.getElementById("next").onclick = () => { if (page * rows < total) { page++; load(); } };
document.querySelectorAll("th[data-sort]").forEach(th => th.onclick = () => {
  const key = th.dataset.sort;
  sort = sort === key ? `${key} desc` : key;
  page = 1; load();
});
load();
