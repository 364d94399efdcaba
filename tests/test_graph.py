"""The apple examples of chapter 5 print exactly what the book prints."""

import numpy as np

from dlscratch import AddLayer, MulLayer


def test_buy_apple_forward_and_backward():
    apple, apple_num, tax = 100, 2, 1.1
    mul_apple_layer, mul_tax_layer = MulLayer(), MulLayer()
    apple_price = mul_apple_layer.forward(apple, apple_num)
    price = mul_tax_layer.forward(apple_price, tax)
    assert str(price) == "220.00000000000003"

    dapple_price, dtax = mul_tax_layer.backward(1)
    dapple, dapple_num = mul_apple_layer.backward(dapple_price)
    assert f"{dapple} {dapple_num} {dtax}" == "2.2 110.00000000000001 200"


def test_buy_apple_orange():
    apple, apple_num, orange, orange_num, tax = 100, 2, 150, 3, 1.1
    mul_apple_layer, mul_orange_layer = MulLayer(), MulLayer()
    add_apple_orange_layer, mul_tax_layer = AddLayer(), MulLayer()

    apple_price = mul_apple_layer.forward(apple, apple_num)
    orange_price = mul_orange_layer.forward(orange, orange_num)
    all_price = add_apple_orange_layer.forward(apple_price, orange_price)
    price = mul_tax_layer.forward(all_price, tax)

    dall_price, dtax = mul_tax_layer.backward(1)
    dapple_price, dorange_price = add_apple_orange_layer.backward(dall_price)
    dorange, dorange_num = mul_orange_layer.backward(dorange_price)
    dapple, dapple_num = mul_apple_layer.backward(dapple_price)

    assert str(price) == "715.0000000000001"
    assert (
        f"{dapple_num} {dapple} {dorange} {dorange_num} {dtax}"
        == "110.00000000000001 2.2 3.3000000000000003 165.0 650"
    )


def test_graph_nodes_work_on_arrays_and_do_not_alias_dout(rng):
    x, y = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    mul, add = MulLayer(), AddLayer()
    np.testing.assert_array_equal(mul.forward(x, y), x * y)
    np.testing.assert_array_equal(add.forward(x, y), x + y)
    dout = rng.standard_normal((2, 3))
    dx, dy = mul.backward(dout)
    np.testing.assert_array_equal(dx, dout * y)
    np.testing.assert_array_equal(dy, dout * x)
    dx, dy = add.backward(dout)
    assert dx is not dout and dy is not dout and dx is not dy
    np.testing.assert_array_equal(dx, dout)
