"""ENAS's controller for NB201 cells: a two-layer LSTM that picks one op per edge.

As NB201 released it (AutoDL-Projects ``search_model_enas_utils.Controller``, after
TDeVries's ENAS port): LSTM size 32, logits divided by the temperature 5 and squashed by
``2.5 * tanh``, each edge's sampled op embedded as the next step's input. Initial values
as released: the input vector, the first LSTM layer's weights, the embedding and the
prediction weights uniform in ±0.1; the rest PyTorch's default formulas. Every draw comes
from the generators the caller passes, never torch's global RNG.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Controller(nn.Module):
    """Samples a cell; returns its summed log-probability, summed entropy and op codes."""

    def __init__(
        self,
        num_edges: int,
        num_ops: int,
        generator: torch.Generator,
        lstm_size: int = 32,
        lstm_layers: int = 2,
        tanh_constant: float = 2.5,
        temperature: float = 5.0,
    ) -> None:
        super().__init__()
        self.num_edges, self.num_ops = num_edges, num_ops
        self.tanh_constant, self.temperature = tanh_constant, temperature
        self.input_vars = nn.Parameter(torch.empty(1, 1, lstm_size))
        self.w_lstm = nn.LSTM(input_size=lstm_size, hidden_size=lstm_size, num_layers=lstm_layers)
        self.w_embd = nn.Embedding(num_ops, lstm_size)
        self.w_pred = nn.Linear(lstm_size, num_ops)
        with torch.no_grad():
            bound = 1.0 / math.sqrt(lstm_size)  # nn.LSTM's default
            for weight in self.w_lstm.parameters():
                weight.uniform_(-bound, bound, generator=generator)
            self.w_embd.weight.normal_(generator=generator)  # nn.Embedding's default
            nn.init.kaiming_uniform_(self.w_pred.weight, a=math.sqrt(5), generator=generator)
            self.w_pred.bias.uniform_(-bound, bound, generator=generator)  # fan_in = lstm_size
            for tensor in (
                self.input_vars,
                self.w_lstm.weight_hh_l0,
                self.w_lstm.weight_ih_l0,
                self.w_embd.weight,
                self.w_pred.weight,
            ):
                tensor.uniform_(-0.1, 0.1, generator=generator)

    def forward(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        inputs, state = self.input_vars, None
        log_probs, entropies, cell = [], [], []
        for _ in range(self.num_edges):
            outputs, state = self.w_lstm(inputs, state)
            logits = self.tanh_constant * torch.tanh(self.w_pred(outputs) / self.temperature)
            log_p = torch.log_softmax(logits.view(-1), dim=-1)
            op = int(torch.multinomial(log_p.exp().detach(), 1, generator=generator))
            cell.append(op)
            log_probs.append(log_p[op])
            entropies.append(-(log_p.exp() * log_p).sum())
            inputs = self.w_embd(torch.tensor([[op]]))
        return torch.stack(log_probs).sum(), torch.stack(entropies).sum(), cell
