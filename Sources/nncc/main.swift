import NNCCLI; nnccMain()
